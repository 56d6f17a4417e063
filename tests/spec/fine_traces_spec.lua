-- Fine traces (thousands of spans per request) through the real binary on
-- a real store: steps by path with self time, --steps, units below a
-- millisecond, `show` folding repeated siblings with --depth, --min-ms and
-- --all, and `run`'s closing timeline staying a few dozen lines.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")

local MU = "\xc2\xb5"     -- µ
local TIMES = "\xc3\x97"  -- ×

-- One request: 1,000 score_doc under rerank, each with a tokenize; embed
-- with 3 tokenize of its own; outer with a known share of its own time.
local FINE = [[
  trace("request", function()
    span("rerank", function()
      for i = 1, 1000 do span("score_doc", function() span("tokenize", function() end) end) end
    end)
    span("embed", function()
      for i = 1, 3 do span("tokenize", function() end) end
    end)
    span("outer", function()
      moonspan.sleep_ms(30)
      span("inner", function() moonspan.sleep_ms(20) end)
    end)
  end)
]]

local function ok(args, db)
  local r = H.moonspan(args, {db = db})
  assert.are.equal(0, r.code, r.err)
  return r
end

-- Exit 2 and a message that names the problem (and, by `want`, the fix).
local function refused(args, db, want)
  local r = H.moonspan(args, {db = db})
  assert.are.equal(2, r.code, r.out .. r.err)
  assert.is_truthy(r.err:find(want, 1, true), r.err)
  assert.are.equal("", r.out)
end

local function step(j, path)
  for _, s in ipairs(j.steps) do
    if table.concat(s.path or {s.name}, "/") == path then return s end
  end
end

describe("a fine trace", function()
  local built = H.once(function()
    local r = H.run_ok(FINE, {name = "fine"})
    r.id = H.trace_row(r.db, "request").trace_id
    return r
  end)

  describe("in the report", function()
    it("groups steps by path: tokenize under score_doc and under embed are two rows", function()
      local j = H.json(ok({"report", "--json"}, built().db).out)
      assert.are.equal("path", j.window.steps_by)
      assert.are.equal(1000, step(j, "rerank/score_doc/tokenize").count)
      assert.are.equal(3, step(j, "embed/tokenize").count)
      assert.are.equal(1000, step(j, "rerank/score_doc").count)
      assert.is_nil(step(j, "request/rerank"), "the request's own name is not part of a path")
      local by_name = H.json(ok({"report", "--json", "--by", "name"}, built().db).out)
      assert.are.equal("name", by_name.window.steps_by)
      assert.are.equal(1003, step(by_name, "tokenize").count)
    end)

    it("gives each step its self time: its duration minus its direct children's", function()
      local j = H.json(ok({"report", "--json"}, built().db).out)
      local outer, inner = step(j, "outer"), step(j, "outer/inner")
      assert.is_true(math.abs(outer.self_ms - (outer.total_ms - inner.total_ms)) < 1e-6,
                     outer.self_ms .. " vs " .. outer.total_ms .. " - " .. inner.total_ms)
      assert.is_true(outer.self_ms >= 29, "outer slept 30 ms itself: " .. outer.self_ms)
      assert.is_true(inner.self_ms >= 19, "inner slept 20 ms: " .. inner.self_ms)
      -- rerank's own time is what its 1,000 children leave
      local rerank, docs = step(j, "rerank"), step(j, "rerank/score_doc")
      assert.is_true(math.abs(rerank.self_ms - (rerank.total_ms - docs.total_ms)) < 1e-6)
    end)

    it("prints microseconds where milliseconds would say 0.00", function()
      local out = ok({"report"}, built().db).out
      assert.is_truthy(out:find("\n  rerank/score_doc/tokenize +1000 +[%d.]+ [n" .. MU .. "]+s"), out)
      assert.is_nil(out:find("0.00 ms", 1, true), out)
    end)

    it("lists the heaviest steps with --steps N and says how many more there are", function()
      local out = ok({"report", "--steps", "2"}, built().db).out
      assert.is_truthy(out:find("  ... 5 more steps (--steps N lists more, --steps all every one)", 1, true), out)
      local j = H.json(ok({"report", "--json", "--steps", "2"}, built().db).out)
      assert.are.equal(2, #j.steps)
      assert.are.equal(5, j.steps_omitted)
      j = H.json(ok({"report", "--json"}, built().db).out)
      assert.are.equal(7, #j.steps)
      assert.are.equal(0, j.steps_omitted)
      assert.are.equal(7, #H.json(ok({"report", "--json", "--steps", "all"}, built().db).out).steps)
    end)

    it("refuses a bad --steps or --by, naming the fix; the old --by day|month still works", function()
      refused({"report", "--steps", "0"}, built().db, "--steps '0' is not a number of steps")
      refused({"report", "--steps", "lots"}, built().db, "--steps all")
      refused({"report", "--by", "tree"}, built().db, "use --by path or --by name")
      refused({"report", "--trend", "week"}, built().db, "use --trend day or --trend month")
      local j = H.json(ok({"report", "--json", "--by", "month"}, built().db).out)
      assert.are.equal("month", j.window.group_by)
      assert.are.equal("path", j.window.steps_by)
      j = H.json(ok({"report", "--json", "--trend", "month", "--by", "name"}, built().db).out)
      assert.are.same({"month", "name"}, {j.window.group_by, j.window.steps_by})
    end)

    it("says what the new options do in --help", function()
      local out = ok({"report", "--help"}).out
      for _, s in ipairs({"--by path|name", "--steps N|all", "--trend day|month", "self"}) do
        assert.is_truthy(out:find(s, 1, true), s)
      end
      out = ok({"show", "--help"}).out
      for _, s in ipairs({"--depth N", "--min-ms X", "--all"}) do
        assert.is_truthy(out:find(s, 1, true), s)
      end
    end)
  end)

  describe("in show", function()
    it("folds the 1,000 score_doc into one line with their total and spread", function()
      local out = ok({"show", built().id}, built().db).out
      assert.is_truthy(out:find("\n    score_doc " .. TIMES .. "1000 +\xce\xa3 [%d.]+ %S+ +p50 [%d.]+ %S+  p95 [%d.]+ %S+  max "),
                       out)
      assert.is_truthy(out:find("\n      tokenize " .. TIMES .. "1000 ", 1, true), out)
      assert.is_truthy(out:find("\n    tokenize " .. TIMES .. "3 ", 1, true), out)
      assert.is_true(H.lines(out) < 15, out)
      -- --all: every span its own line
      local all = ok({"show", "--all", built().id}, built().db).out
      assert.is_nil(all:find(TIMES, 1, true))
      assert.are.equal(3 + 1 + 1 + 2000 + 1 + 3 + 2, H.lines(all))
      -- JSON is the whole trace, folding or not
      local j = H.json(ok({"show", "--json", built().id}, built().db).out)
      assert.are.equal(1000, #j.spans[1].children[1].children)
    end)

    it("stops at --depth N, saying how many spans are below", function()
      local out = ok({"show", "--depth", "1", built().id}, built().db).out
      assert.is_truthy(out:find("\n  rerank +[%d.]+ %S+ +ok  %(%+2000 spans below%)\n"), out)
      assert.is_truthy(out:find("(+1 span below)", 1, true), out)
      assert.is_nil(out:find("score_doc", 1, true), out)
    end)

    it("hides spans shorter than --min-ms, counting them under their parent", function()
      local out = ok({"show", "--min-ms", "15", built().id}, built().db).out
      assert.is_truthy(out:find("\n  outer ", 1, true), out)
      assert.is_truthy(out:find("\n    inner ", 1, true), out)
      assert.is_truthy(out:find("\n  ... 2 spans shorter than 15.0 ms hidden (and 2003 inside them)\n", 1, true), out)
    end)

    it("refuses bad values, and shaping the text with --json, naming the fix", function()
      refused({"show", "--depth", "0", built().id}, built().db, "--depth '0' is not a whole number from 1")
      refused({"show", "--min-ms", "-1", built().id}, built().db, "--min-ms '-1' is not a number of milliseconds")
      refused({"show", "--min-ms", "soon", built().id}, built().db, "e.g. --min-ms 1")
      refused({"show", "--json", "--depth", "2", built().id}, built().db,
              "--depth shapes the text view, and --json is always the whole trace")
    end)
  end)

  it("lists a trace of microseconds in µs", function()
    local r = H.run_ok([[trace("blink", function() end)]], {name = "blink"})
    local out = ok({"traces"}, r.db).out
    assert.is_truthy(out:find("  [%d.]+ [n" .. MU .. "]+s  "), out)
  end)

  it("groups a child written before its parent (a part cut while the parent was open)", function()
    -- 5,000 ended children cut in parts of 4,096 while rerank is still open
    local r = H.run_ok([[
      trace("long", function()
        span("rerank", function()
          for i = 1, 5000 do span("score_doc", function() end) end
        end)
      end)
    ]], {name = "cut"})
    assert.is_true(H.scalar(r.db, "SELECT parts FROM traces WHERE name = 'long'") > 0)
    local j = H.json(ok({"report", "--json"}, r.db).out)
    assert.are.equal(5000, step(j, "rerank/score_doc").count)
    assert.is_nil(step(j, "score_doc"))
    local show = ok({"show", H.trace_row(r.db, "long").trace_id}, r.db).out
    assert.is_truthy(show:find("\n    score_doc " .. TIMES .. "5000 ", 1, true), show)
  end)
end)

describe("run's closing timeline", function()
  it("stays a few dozen lines for a 100,000-span trace, saying how many spans it left out", function()
    local r = H.run_script([[
      trace("big", function()
        for i = 1, 100000 do span("tool" .. (i % 500), function() end) end
      end)
    ]], {name = "big", quiet = false})
    assert.are.equal(0, r.code, r.err)
    assert.is_true(H.lines(r.err) < 60, H.lines(r.err) .. " lines")
    assert.is_true(#r.err < 8000, #r.err .. " bytes")
    assert.is_truthy(r.err:find("more spans (`moonspan show ", 1, true), r.err)
  end)

  it("folds repeated siblings, in the units that fit", function()
    local r = H.run_script(FINE, {name = "fine_run", quiet = false})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.err:find("  score_doc " .. TIMES .. "1000  p50 [%d.]+ [n" .. MU .. "]+s  p95 "), r.err)
    assert.is_truthy(r.err:find(" tokenize " .. TIMES .. "3  ", 1, true), r.err)
    assert.is_nil(r.err:find("0.00 ms", 1, true), r.err)
    assert.is_true(H.lines(r.err) < 20, r.err)
  end)
end)

describe("eval output", function()
  it("prints durations below a millisecond as the report does", function()
    assert.are.equal("3.00 " .. MU .. "s", moonspan.fmt_ms(0.003))
    assert.are.equal("400 ns", require("moonspan.eval").fmt_ms(0.0004))
    assert.are.equal("-", require("moonspan.eval").fmt_ms(nil))
    local S = require "moonspan.scorers"
    local res = S.apply(S.max_latency_ms(100), nil, {}, {latency_ms = 0.5})
    assert.are.equal("latency 500 " .. MU .. "s <= 100.0 ms", res.reason)
  end)
end)
