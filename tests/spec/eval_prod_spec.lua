-- Eval runs that behave like production, through the real binary and a
-- real store: a pipeline's own trace() becomes its case's trace (same
-- names and paths as `moonspan run` gives), waits yield inside cases and
-- parallel(), `moonspan show` of a case shows its eval result, and
-- `moonspan run` of a suite points to `moonspan eval`.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local fake = dofile(here .. "fake_server.lua").start(H)

teardown(function() fake.stop() end)

-- The README's headline pattern: a pipeline that opens its own trace.
local PIPELINE = [[
local M = {}
function M.answer(q)
  return trace("rag_answer", {tenant = "acme"}, function(ctx)
    local docs = span("retrieve", function() return {"d1"} end)
    return span("generate", function()
      span("format", function() end)
      return "answer:" .. q
    end)
  end)
end
return M
]]

local function eval(dir, args, db)
  local all = {"eval"}
  for _, a in ipairs(args) do all[#all + 1] = a end
  return H.moonspan(all, {db = db or (dir .. "/e.db"), cwd = dir})
end

-- A new folder holding PIPELINE (as pipeline.lua) and `suite_src` (as
-- suite.lua), evaluated there into e.db. Returns dir, db and the eval's result.
local function eval_with_pipeline(tag, suite_src)
  local dir = H.tmpdir(tag)
  H.write(dir .. "/pipeline.lua", PIPELINE)
  H.write(dir .. "/suite.lua", suite_src)
  return dir, dir .. "/e.db", eval(dir, {"suite.lua"})
end

-- (name, parent name) of every span of a trace row, sorted, scorer spans left out.
local function shape(db, trace_id)
  local rows = H.query(db, "SELECT s.name, p.name AS parent FROM spans s JOIN traces t ON s.trace_row = t.id"
                           .. " LEFT JOIN spans p ON p.trace_row = s.trace_row AND p.span_id = s.parent_id"
                           .. " WHERE t.trace_id = '" .. trace_id .. "' ORDER BY s.rowid")
  local out = {}
  for _, r in ipairs(rows) do
    if not r.name:match("^eval%.score:") then out[#out + 1] = (r.parent or "-") .. " > " .. r.name end
  end
  table.sort(out)
  return out
end

describe("a pipeline that opens its own trace() inside an eval case", function()
  local dir, db, r, prod
  setup(function()
    dir, db, r = eval_with_pipeline("own-trace", [[
      local pipeline = require "pipeline"
      return suite "reuse" {
        dataset = {{id = "a", input = "x", expected = "answer:x"}, {id = "b", input = "y", expected = "nope"}},
        run = function(case) return pipeline.answer(case.input) end,
        scorers = { exact(case_field "expected") },
      }
    ]])
    H.write(dir .. "/prod.lua", 'require("pipeline").answer("x")\n')
    prod = H.moonspan({"run", "--quiet", "prod.lua"}, {db = dir .. "/prod.db", cwd = dir})
  end)

  it("runs: no 'trace called inside trace' error, the failing case fails on its score only", function()
    assert.are.equal(1, r.code, r.err)
    assert.is_nil(r.out:find("called inside", 1, true), r.out)
    assert.is_nil(r.err:find("called inside", 1, true), r.err)
    local rows = H.query(db, "SELECT case_id, pass, error FROM eval_results ORDER BY case_id")
    assert.are.same({{case_id = "a", pass = 1}, {case_id = "b", pass = 0}}, rows)
  end)

  it("gives each case one trace, named as the pipeline names it, that the result points to", function()
    assert.are.equal(2, H.scalar(db, "SELECT count(*) FROM traces"))
    local rows = H.query(db, "SELECT r.case_id, t.name, t.attrs FROM eval_results r JOIN traces t"
                             .. " ON t.trace_id = r.trace_id ORDER BY r.case_id")
    assert.are.equal(2, #rows)
    for _, row in ipairs(rows) do
      assert.are.equal("rag_answer", row.name)
      local attrs = H.json(row.attrs)
      -- the case's attributes and the pipeline's, on the one trace
      assert.are.equal(row.case_id, attrs.case_id)
      assert.are.equal(1, attrs.repeat_index)
      assert.are.equal(H.scalar(db, "SELECT id FROM eval_runs"), attrs.eval_run)
      assert.are.equal("acme", attrs.tenant)
    end
  end)

  it("has the spans production has, at the same paths (no eval.run wrapper), plus its scorer spans", function()
    assert.are.equal(0, prod.code, prod.err)
    local prod_id = H.scalar(dir .. "/prod.db", "SELECT trace_id FROM traces WHERE name = 'rag_answer'")
    local want = shape(dir .. "/prod.db", prod_id)
    assert.are.same({"- > rag_answer", "generate > format", "rag_answer > generate", "rag_answer > retrieve"}, want)
    for _, id in ipairs{"a", "b"} do
      local tid = H.scalar(db, "SELECT trace_id FROM eval_results WHERE case_id = '" .. id .. "'")
      assert.are.same(want, shape(db, tid))
      -- the scorer's span is in the same trace, under its root
      local sc = H.query(db, "SELECT p.name AS parent FROM spans s JOIN traces t ON s.trace_row = t.id"
                             .. " JOIN spans p ON p.trace_row = s.trace_row AND p.span_id = s.parent_id"
                             .. " WHERE t.trace_id = '" .. tid .. "' AND s.name = 'eval.score:exact'")
      assert.are.same({{parent = "rag_answer"}}, sc)
    end
    assert.are.equal(0, H.scalar(db, "SELECT count(*) FROM spans WHERE name = 'eval.run'"))
  end)
end)

describe("case traces, whatever the pipeline does with trace()", function()
  local dir, db, r
  setup(function()
    dir, db, r = eval_with_pipeline("trace-shapes", [[
      local pipeline = require "pipeline"
      local one = {{id = "c", input = "x"}}
      return {
        suite "twice" { scorers = {function() return true end}, dataset = one, run = function(case)
          pipeline.answer("1")
          return trace("second", {step = 2}, function() return span("generate", function() return "2" end) end)
        end },
        suite "none" { scorers = {function() return true end}, dataset = one, run = function(case) return span("generate", function() return "n" end) end },
        suite "parallel" { scorers = {function() return true end}, dataset = one, run = function(case)
          local a, b = parallel(function() return pipeline.answer("1") end, function() return pipeline.answer("2") end)
          return a .. b
        end },
        suite "nested" { scorers = {function() return true end}, dataset = one, run = function(case)
          return trace("outer", function() return trace("inner", function() return 1 end) end)
        end },
        suite "raises" { scorers = {function() return true end}, dataset = one, run = function(case)
          return trace("boom", function() return span("generate", function() error("kaput") end) end)
        end },
      }
    ]])
  end)

  local function case_trace(suite)
    local rows = H.query(db, "SELECT t.name, t.status, t.error_count, t.attrs, t.trace_id, r.pass, r.error"
                             .. " FROM eval_results r JOIN eval_runs e ON e.id = r.eval_run"
                             .. " JOIN traces t ON t.trace_id = r.trace_id WHERE e.suite = '" .. suite .. "'")
    assert.are.equal(1, #rows, suite)
    return rows[1]
  end

  it("trace() twice: one trace named by the first, both bodies' steps at its root, both attributes", function()
    local t = case_trace("twice")
    assert.are.equal("rag_answer", t.name)
    assert.are.equal(1, t.pass)
    local attrs = H.json(t.attrs)
    assert.are.equal("acme", attrs.tenant)
    assert.are.equal(2, attrs.step)
    local gens = H.query(db, "SELECT count(*) AS n FROM spans s JOIN traces t ON s.trace_row = t.id"
                             .. " JOIN spans p ON p.trace_row = s.trace_row AND p.span_id = s.parent_id"
                             .. " WHERE t.trace_id = '" .. t.trace_id .. "' AND s.name = 'generate'"
                             .. " AND p.name = 'rag_answer'")
    assert.are.equal(2, gens[1].n)
  end)

  it("no trace(): the case's own trace eval:SUITE:CASE, the steps at its root", function()
    local t = case_trace("none")
    assert.are.equal("eval:none:c", t.name)
    assert.are.same({"- > eval:none:c", "eval:none:c > generate"}, shape(db, t.trace_id))
  end)

  it("trace() in parallel tasks of a case: both join the case's one trace", function()
    local t = case_trace("parallel")
    assert.are.equal("rag_answer", t.name)
    assert.are.equal(1, t.pass)
    assert.are.equal(1, H.scalar(db, "SELECT count(*) FROM traces WHERE trace_id = '" .. t.trace_id .. "'"))
    assert.are.equal(2, H.scalar(db, "SELECT count(*) FROM spans s JOIN traces t ON s.trace_row = t.id"
                                     .. " WHERE t.trace_id = '" .. t.trace_id .. "' AND s.name = 'retrieve'"))
  end)

  it("a trace() inside the pipeline's trace() is refused as in production", function()
    local t = case_trace("nested")
    assert.are.equal(0, t.pass)
    assert.is_truthy(t.error:find("trace('inner') called inside trace 'outer'", 1, true), t.error)
  end)

  it("an error in the pipeline's trace fails the case and the trace, counted once", function()
    local t = case_trace("raises")
    assert.are.equal("boom", t.name)
    assert.are.equal(0, t.pass)
    assert.are.equal("error", t.status)
    assert.are.equal(1, t.error_count)
    assert.is_truthy(t.error:find("kaput", 1, true), t.error)
  end)

  it("outside eval, trace() inside trace() is still an error", function()
    local p = H.run_script('trace("a", function() trace("b", function() end) end)')
    assert.are.equal(1, p.code)
    assert.is_truthy(p.err:find("trace('b') called inside trace 'a'", 1, true), p.err)
  end)
end)

describe("waits yield inside a scheduler", function()
  it("three moonspan.sleep_ms(150) in parallel take about 150 ms, not 450; alone it still sleeps", function()
    local r = H.run_ok([[
      local t0 = moonspan.now_ms()
      parallel(function() moonspan.sleep_ms(150) end, function() moonspan.sleep_ms(150) end,
               function() moonspan.sleep_ms(150) end)
      local par = moonspan.now_ms() - t0
      t0 = moonspan.now_ms()
      moonspan.sleep_ms(60)
      print(string.format("%d %d", math.floor(par), math.floor(moonspan.now_ms() - t0)))
    ]])
    local par, alone = r.out:match("(%d+) (%d+)")
    par, alone = tonumber(par), tonumber(alone)
    assert.is_truthy(par >= 150 and par < 300, "parallel took " .. par .. " ms")
    assert.is_truthy(alone >= 60, "sleep_ms(60) alone took " .. alone .. " ms")
  end)

  it("inside a task, a bad argument is still an error naming it", function()
    local r = H.run_script('parallel(function() moonspan.sleep_ms(-1) end)')
    assert.are.equal(1, r.code)
    assert.is_truthy(r.err:find("bad argument #1 to 'sleep_ms' (milliseconds must be between 0 and 1e10)", 1, true),
                     r.err)
  end)

  it("moonspan.http.wait in parallel tasks overlaps the transfers (3 x 300 ms in well under 900 ms)", function()
    local r = H.run_ok(string.format([[
      local function call()
        local h = moonspan.http.start{url = %q, method = "POST", body = "{}",
                                      headers = {["x-fake-fault"] = "delay=300", ["content-type"] = "application/json"}}
        moonspan.http.wait(h)
        return h:result().status
      end
      local t0 = moonspan.now_ms()
      local a, b, c = parallel(call, call, call)
      print(string.format("%%d %%d %%d %%d", a, b, c, math.floor(moonspan.now_ms() - t0)))
    ]], fake.url .. "/v1/messages"))
    local a, b, c, ms = r.out:match("(%d+) (%d+) (%d+) (%d+)")
    assert.are.same({"200", "200", "200"}, {a, b, c})
    assert.is_truthy(tonumber(ms) >= 300 and tonumber(ms) < 700, "took " .. ms .. " ms")
  end)

  it("SIGINT ends a sleep that yields inside parallel at once, its spans stored as interrupted", function()
    local r = H.run_bg([[
      trace("sleepers", function()
        parallel(function() span("a", function() ready(); moonspan.sleep_ms(10000) end) end,
                 function() span("b", function() moonspan.sleep_ms(10000) end) end)
      end)
    ]], "sleep 0.2; kill -INT $pid", {name = "sleepers"})
    assert.are.equal(130, r.status, r.err)
    assert.is_truthy(r.seconds < 5, "took " .. r.seconds .. " s")
    assert.are.equal("interrupted", H.scalar(r.db, "SELECT status FROM traces WHERE name = 'sleepers'"))
  end)

  it("a latency scorer gives the same pass rate at --concurrency 15 as at --concurrency 1", function()
    local dir = H.tmpdir("latency")
    H.write(dir .. "/suite.lua", [[
      local cases = {}
      for i = 1, 15 do cases[i] = {id = "c" .. i, input = i} end
      return suite "sleepy" {
        dataset = cases,
        run = function(case) moonspan.sleep_ms(100) return case.input end,
        scorers = { max_latency_ms(180) },
      }
    ]])
    local one = eval(dir, {"--concurrency", "1", "suite.lua"}, dir .. "/one.db")
    local many = eval(dir, {"--concurrency", "15", "suite.lua"}, dir .. "/many.db")
    assert.are.equal(0, one.code, one.out .. one.err)
    assert.are.equal(0, many.code, many.out .. many.err)
    assert.are.equal(1, H.scalar(dir .. "/one.db", "SELECT pass_rate FROM eval_runs"))
    assert.are.equal(1, H.scalar(dir .. "/many.db", "SELECT pass_rate FROM eval_runs"))
    -- and the cases did overlap: 15 x 100 ms in well under 1.5 s
    local wall = H.scalar(dir .. "/many.db", "SELECT (end_ns - start_ns) / 1e6 FROM eval_runs")
    assert.is_truthy(wall < 1000, "the run took " .. wall .. " ms")
  end)
end)

describe("moonspan.exec", function()
  it("runs a command with stdin, returning status, stdout and stderr", function()
    local r = H.run_ok([[
      local r = moonspan.exec{"sh", "-c", "cat; echo oops >&2; exit 3", stdin = "hello"}
      io.write(string.format("%d|%s|%s|%s", r.status, r.stdout, r.stderr, tostring(r.timed_out)))
    ]])
    assert.are.equal("3|hello|oops\n|false", r.out)
  end)

  it("three commands of 300 ms in parallel take about 300 ms, not 900", function()
    local r = H.run_ok([[
      local function nap() return moonspan.exec{"sleep", "0.3"}.status end
      local t0 = moonspan.now_ms()
      local a, b, c = parallel(nap, nap, nap)
      print(string.format("%d %d %d %d", a, b, c, math.floor(moonspan.now_ms() - t0)))
    ]])
    local a, b, c, ms = r.out:match("(%d+) (%d+) (%d+) (%d+)")
    assert.are.same({"0", "0", "0"}, {a, b, c})
    assert.is_truthy(tonumber(ms) >= 300 and tonumber(ms) < 700, "took " .. ms .. " ms")
  end)

  it("kills a command past timeout_ms and says so", function()
    local r = H.run_ok([[
      local r = moonspan.exec{"sleep", "10", timeout_ms = 100}
      print(tostring(r.status), r.signal, tostring(r.timed_out), r.elapsed_ms < 2000)
    ]])
    assert.are.equal("nil\tSIGTERM\ttrue\ttrue\n", r.out)
  end)

  it("survives a command that stops reading its stdin (no SIGPIPE)", function()
    local r = H.run_ok([[
      local r = moonspan.exec{"head", "-c", "1", stdin = string.rep("x", 1000000)}
      print(r.status, r.stdout)
    ]])
    assert.are.equal("0\tx\n", r.out)
  end)

  it("SIGINT ends the run at once and leaves no command running", function()
    local marker = "4242.5" -- an argument no other process has
    local r = H.run_bg(string.format([[
      parallel(function() ready(); moonspan.exec{"sleep", %q} end)
    ]], marker), "sleep 0.3; kill -INT $pid", {name = "exec_int"})
    assert.are.equal(130, r.status, r.err)
    assert.is_truthy(r.seconds < 5, "took " .. r.seconds .. " s")
    local left = H.sh("pgrep -f '^slee[p] " .. marker .. "'") -- the bracket: not this shell's own command line
    assert.are.equal("", left.out, "a command outlived the run")
  end)

  it("bad input: an error naming the problem and the fix", function()
    local cases = {
      {'moonspan.exec{}', "the command is missing, e.g. moonspan.exec{\"ls\", \"-l\"}"},
      {'moonspan.exec{"true", shell = true}', "unknown field 'shell' (the fields are stdin and timeout_ms)"},
      {'moonspan.exec{"true", timeout_ms = -1}', "timeout_ms must be a whole number of milliseconds >= 0"},
      {'moonspan.exec{"no-such-command-here"}', "cannot run 'no-such-command-here': No such file or directory (is it installed, and on PATH?)"},
      {'moonspan.exec{"true", {}}', "argument 2 must be a string, got table"},
    }
    for _, c in ipairs(cases) do
      local r = H.run_script(c[1])
      assert.are.equal(1, r.code, c[1])
      assert.is_truthy(r.err:find(c[2], 1, true), c[1] .. " -> " .. r.err)
      assert.is_truthy(r.err:find("script.lua:1:", 1, true), c[1] .. " -> " .. r.err)
    end
  end)
end)

describe("moonspan show of a case's trace", function()
  local dir, db, failed, passed
  setup(function()
    dir, db = eval_with_pipeline("show-case", [[
      local pipeline = require "pipeline"
      return suite "reuse" {
        dataset = {{id = "good", input = "x", expected = "answer:x"},
                   {id = "bad", input = {q = "y\27[2J"}, expected = "nope"}},
        run = function(case)
          if type(case.input) == "table" then return pipeline.answer(case.input.q) end
          return pipeline.answer(case.input)
        end,
        scorers = { exact(case_field "expected"), contains("answer") },
      }
    ]])
    failed = H.scalar(db, "SELECT trace_id FROM eval_results WHERE case_id = 'bad'")
    passed = H.scalar(db, "SELECT trace_id FROM eval_results WHERE case_id = 'good'")
  end)

  it("text: the heading says the case FAILED, then input, expected, output, each score and reason", function()
    local r = H.moonspan({"show", failed}, {db = db})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("status ok (it raised no error, but the eval case FAILED)", 1, true), r.out)
    assert.is_truthy(r.out:find("eval case FAILED: suite reuse, case bad, repeat 1, eval run 1", 1, true), r.out)
    assert.is_truthy(r.out:find('input     {"q":"y\\u001b[2J"}', 1, true), r.out)
    assert.is_truthy(r.out:find('expected  "nope"', 1, true), r.out)
    assert.is_truthy(r.out:find('output    "answer:y\\u001b[2J"', 1, true), r.out)
    assert.is_truthy(r.out:find('score     exact  FAIL  0  expected "nope", got', 1, true), r.out)
    assert.is_truthy(r.out:find("score     contains  pass  1", 1, true), r.out)
    assert.is_nil(r.out:find("\27", 1, true), "an escape reached the terminal")
    -- the eval block comes before the tree
    assert.is_truthy(r.out:find("eval case FAILED", 1, true) < r.out:find("retrieve", 1, true))
  end)

  it("text: a passed case says so", function()
    local r = H.moonspan({"show", passed}, {db = db})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("eval case passed: suite reuse, case good", 1, true), r.out)
    assert.is_nil(r.out:find("FAIL", 1, true), r.out)
  end)

  it("--json: an eval object with the result, scores as stored", function()
    local r = H.moonspan({"show", "--json", failed}, {db = db})
    assert.are.equal(0, r.code, r.err)
    local e = H.json(r.out).eval
    assert.are.equal("reuse", e.suite)
    assert.are.equal(1, e.eval_run)
    assert.are.equal("bad", e.case_id)
    assert.are.equal(1, e.repeat_index)
    assert.are.equal(false, e.pass)
    assert.are.same({q = "y\27[2J"}, e.input)
    assert.are.equal("nope", e.expected)
    assert.are.equal("answer:y\27[2J", e.output)
    assert.are.equal(2, #e.scores)
    assert.are.equal("exact", e.scores[1].name)
    assert.are.equal(false, e.scores[1].pass)
    assert.are.equal("contains", e.scores[2].name)
    assert.are.equal(true, e.scores[2].pass)
    assert.is_number(e.latency_ms)
  end)

  it("--json: eval is null for a trace that is no case", function()
    local p = H.run_ok('trace("plain", function() span("s", function() end) end)')
    local id = H.scalar(p.db, "SELECT trace_id FROM traces WHERE name = 'plain'")
    local r = H.moonspan({"show", "--json", id}, {db = p.db})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find('"eval":null', 1, true), r.out)
    local t = H.moonspan({"show", id}, {db = p.db})
    assert.is_nil(t.out:find("eval case", 1, true), t.out)
  end)

  it("shows the error of a case whose run() raised", function()
    local d = H.tmpdir("show-error")
    H.write(d .. "/suite.lua", [[
      return suite "broken" { scorers = {function() return true end}, dataset = {{id = "e1", input = 1}},
        run = function(case) error("the model is down") end }
    ]])
    eval(d, {"suite.lua"})
    local id = H.scalar(d .. "/e.db", "SELECT trace_id FROM eval_results")
    local r = H.moonspan({"show", id}, {db = d .. "/e.db"})
    assert.is_truthy(r.out:find("eval case FAILED: suite broken, case e1", 1, true), r.out)
    assert.is_truthy(r.out:find("error     suite.lua:2: the model is down", 1, true), r.out)
    assert.is_truthy(r.out:find("output    - (none: run() raised)", 1, true), r.out)
  end)
end)

describe("moonspan run of an eval suite", function()
  it("says to run it with moonspan eval, exit 2", function()
    local dir = H.tmpdir("run-suite")
    H.write(dir .. "/suite.lua", 'return suite "s" { scorers = {function() return true end}, dataset = {{id = 1}}, run = function() return 1 end }\n')
    local r = H.moonspan({"run", "suite.lua"}, {db = dir .. "/r.db", cwd = dir})
    assert.are.equal(2, r.code, r.err)
    assert.are.equal("moonspan run: suite.lua is an eval suite: run it with `moonspan eval suite.lua`\n", r.err)
  end)

  it("other calls of a nil global are still the script's error, exit 1", function()
    local r = H.run_script("local x = nil\nsuite_helper()\n")
    assert.are.equal(1, r.code)
    assert.is_truthy(r.err:find("global 'suite_helper'", 1, true), r.err)
  end)
end)
