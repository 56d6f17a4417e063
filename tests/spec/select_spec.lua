-- One trace selection for every view (report, report --profile, traces)
-- and `moonspan runs`, end to end: real `moonspan run` and `moonspan eval`
-- child processes into one store, then the views over it.
--
-- The store (run ids in the order the processes ran):
--   run 1  `run`   answer_a (150 ms, no LLM call: cost unknown, attrs user=alice tier=1 a.b=x)
--                  answer_b (5 ms, a short mock reply, user=bob tier=2)
--                  answer_c (60 ms, a long mock reply, user=carol tier="1")
--                  batch    (raises: status error)
--   run 2  `eval`  suite "mini": eval run 1, two cases, eval:mini:c1 and eval:mini:c2
--   run 3  `run`   late, started at least 4 s after run 1's traces
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")

local PROD = [[
local function answer(name, attrs, sleep, reply)
  trace(name, attrs, function()
    span("generate", function()
      moonspan.sleep_ms(sleep)
      if reply then
        llm.call{model = "mock", messages = {{role = "user", content = "q"}}, mock = {reply = reply}}
      end
    end)
  end)
end
answer("answer_a", {user = "alice", tier = 1, ["a.b"] = "x"}, 150, nil)
answer("answer_b", {user = "bob", tier = 2}, 5, "short")
answer("answer_c", {user = "carol", tier = "1"}, 60, string.rep("word ", 40))
pcall(trace, "batch", function() error("batch failed") end)
]]

local SUITE = [[
return suite "mini" {
  dataset = {{id = "c1", input = "x", expected = "x"}, {id = "c2", input = "y", expected = "z"}},
  run = function(case) return case.input end,
  scorers = {exact(case_field "expected")},
}]]

local function epoch_ms()
  return tonumber((H.sh("date +%s%3N").out:gsub("%s", "")))
end

local store = H.once(function()
  local dir = H.tmpdir("select")
  local db = dir .. "/x.db"
  local r = H.run_script(PROD, {dir = dir, db = db, name = "prod"})
  assert(r.code == 0, r.err)
  H.write(dir .. "/mini.lua", SUITE)
  r = H.moonspan({"eval", dir .. "/mini.lua"}, {db = db})
  assert(r.code == 1, "the mini suite fails one case: " .. r.err)
  -- wide enough that a loaded machine starting the report a second or
  -- two late still puts --until/--since between run 1 and run 3
  moonspan.sleep_ms(4000)
  r = H.run_script('trace("late", function() end)', {dir = dir, db = db, name = "late"})
  assert(r.code == 0, r.err)
  return {db = db, dir = dir}
end)

local function ms(args)
  return H.moonspan(args, {db = store().db})
end

local function report(...)
  local r = ms({"report", "--json", ...})
  assert(r.code == 0, r.err)
  return H.json(r.out)
end

-- names of `traces --json` in the order listed
local function names(...)
  local r = ms({"traces", "--json", ...})
  assert(r.code == 0, r.err)
  local out = {}
  for i, t in ipairs(H.json(r.out)) do out[i] = t.name end
  return table.concat(out, ",")
end

local function usage_error(args, msg) H.usage_error(ms(args), msg) end

describe("moonspan runs", function()
  it("lists the processes newest first, the eval run nested under its process", function()
    local r = ms({"runs"})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("moonspan runs: 3 runs, newest first", 1, true), r.out)
    local i3 = r.out:find("\n +3  run +[^\n]*late%.lua")
    local i2 = r.out:find("\n +2  eval +[^\n]*mini%.lua")
    local i1 = r.out:find("\n +1  run +[^\n]*prod%.lua")
    assert.is_truthy(i3 and i2 and i1, r.out)
    assert.is_true(i3 < i2 and i2 < i1, r.out)
    -- run 1: 4 traces, 1 error; the eval run under run 2
    assert.is_truthy(r.out:find("prod%.lua +%d%d%d%d%-%d%d%-%d%dT[%d:]+Z +[%d.]+ [mµ]?s +4 +1 +0 +0\n"), r.out)
    assert.is_truthy(r.out:find("mini%.lua[^\n]*\n +eval run 1  mini  2 cases, 1 passed %(50%.0%%%)  failed\n"), r.out)
  end)

  it("gives every field in --json, durations in ms", function()
    local r = ms({"runs", "--json"})
    assert.are.equal(0, r.code, r.err)
    local runs = H.json(r.out)
    assert.are.equal(3, #runs)
    assert.are.same({3, 2, 1}, {runs[1].id, runs[2].id, runs[3].id})
    local e, p = runs[2], runs[3]
    assert.are.equal("eval", e.command)
    assert.are.equal("run", p.command)
    assert.is_truthy(p.script:find("prod.lua", 1, true))
    assert.are.same({}, p.args)
    assert.are.equal(4, p.traces)
    assert.are.equal(1, p.errors)
    assert.are.equal(0, p.interrupted)
    assert.are.equal(0, p.incomplete)
    assert.is_true(p.duration_ms > 150 and p.duration_ms < 60000, tostring(p.duration_ms))
    -- cjson reads the epoch ns as doubles (steps of 256 ns at this size)
    assert.is_true(math.abs(p.start_ns + p.duration_ms * 1e6 - p.end_ns) < 1e4)
    assert.are.equal(2, e.traces)
    assert.are.equal(1, #e.eval_runs)
    local er = e.eval_runs[1]
    assert.are.equal(1, er.id)
    assert.are.equal("mini", er.suite)
    assert.are.equal(2, er.cases)
    assert.are.equal(1, er.passed)
    assert.are.equal(0.5, er.pass_rate)
    assert.are.equal("failed", er.status)
  end)

  it("takes --limit and --since, and refuses bad values", function()
    local r = H.json(ms({"runs", "--json", "--limit", "1"}).out)
    assert.are.equal(1, #r)
    assert.are.equal(3, r[1].id)
    assert.are.equal(3, #H.json(ms({"runs", "--json", "--since", "1h"}).out))
    local none = ms({"runs", "--since", "1ms"})
    assert.are.equal(0, none.code)
    assert.is_truthy(none.out:find("no runs in this window", 1, true), none.out)
    usage_error({"runs", "--limit", "0"}, "--limit '0' is not a whole number")
    usage_error({"runs", "--since", "yesterday"}, "--since 'yesterday' is not a duration")
    usage_error({"runs", "--name", "x"}, "unknown option --name")
  end)

  it("says when a run ended without its summary", function()
    local db = store().db
    local dir = H.tmpdir("runs-killed")
    local copy = dir .. "/y.db"
    assert(H.sh("cp " .. H.q(db) .. " " .. H.q(copy)).code == 0)
    -- as a process killed by SIGKILL leaves it: no end_ns
    H.query(copy, "UPDATE runs SET end_ns = NULL WHERE id = 3")
    local r = H.moonspan({"runs"}, {db = copy})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("late%.lua +[%dT:Z-]+ +%- +1"), r.out)
    assert.is_truthy(r.out:find("duration -: still running, or ended without writing its summary", 1, true), r.out)
    assert.are.equal(nil, H.json(H.moonspan({"runs", "--json"}, {db = copy}).out)[1].duration_ms)
  end)
end)

describe("the report's selection", function()
  it("leaves eval traces out by default and says how many, with the option that counts them", function()
    local d = report()
    assert.are.equal(5, d.requests.count)
    assert.are.equal(2, d.window.evals_left_out)
    assert.are.equal("exclude", d.window.evals)
    local r = ms({"report"})
    assert.is_truthy(r.out:find("moonspan report: 5 requests, all time, evals excluded", 1, true), r.out)
    assert.is_truthy(r.out:find("2 eval traces left out (`--evals include` counts them", 1, true), r.out)
    -- the evals section stays: the latest run of each suite
    assert.are.equal("mini", d.evals[1].suite)
  end)

  it("counts them with --evals include, alone with --evals only", function()
    assert.are.equal(7, report("--evals", "include").requests.count)
    local only = report("--evals", "only")
    assert.are.equal(2, only.requests.count)
    assert.are.equal(0, only.window.evals_left_out)
    local ex = report("--evals", "exclude")
    assert.are.equal(5, ex.requests.count)
    assert.are.equal(0, ex.window.evals_left_out) -- asked for: nothing to point out
    local r = ms({"report", "--evals", "only"})
    assert.is_truthy(r.out:find("2 requests, all time, eval traces only", 1, true), r.out)
    assert.is_falsy(r.out:find("left out", 1, true), r.out)
  end)

  it("reports one run with --run and one eval run with --eval-run, their eval traces included", function()
    assert.are.equal(4, report("--run", "1").requests.count)
    local e = report("--run", "2")
    assert.are.equal(2, e.requests.count)
    assert.are.equal(2, e.window.run_id)
    assert.are.equal("include", e.window.evals)
    assert.are.equal(0, report("--run", "2", "--evals", "exclude").requests.count)
    assert.are.equal(2, report("--eval-run", "1").requests.count)
    assert.are.equal(0, report("--run", "1", "--evals", "only").requests.count)
    local r = ms({"report", "--run", "2"})
    assert.is_truthy(r.out:find("moonspan report: 2 requests, all time, run 2 (", 1, true), r.out)
  end)

  it("takes --name, --attr (as text) and --until", function()
    assert.are.equal(3, report("--name", "answer_*").requests.count)
    assert.are.equal(1, report("--attr", "user=alice").requests.count)
    local tier = report("--attr", "tier=1") -- the number 1 and the string "1"
    assert.are.equal(2, tier.requests.count)
    assert.are.same({tier = "1"}, tier.window.attrs)
    assert.are.equal(1, report("--attr", "a.b=x").requests.count)
    assert.are.equal(0, report("--attr", "user=alice", "--attr", "tier=2").requests.count)
    -- --until halfway between run 1's traces and run 3's, counted from now
    local db = store().db
    local last1 = H.scalar(db, "SELECT max(start_ns) / 1000000 FROM traces WHERE run_id = 1")
    local late = H.scalar(db, "SELECT start_ns / 1000000 FROM traces WHERE run_id = 3")
    assert.is_true(late - last1 >= 3900, "run 3 started too soon after run 1")
    local ago = epoch_ms() - (last1 + late) // 2
    local before = report("--until", ago .. "ms", "--evals", "include")
    assert.are.equal(6, before.requests.count) -- runs 1 and 2, not 3
    assert.is_string(before.window["until"])
    local after = report("--since", ago .. "ms")
    assert.are.equal(1, after.requests.count) -- late
    local none = ms({"report", "--until", "1h"})
    assert.are.equal(0, none.code)
    assert.is_truthy(none.out:find("no traces match this selection", 1, true), none.out)
  end)

  it("refuses unknown ids, bad values and contradictions, exit 2 and one line", function()
    usage_error({"report", "--run", "99"}, "no run 99 in x.db; `moonspan runs` lists them")
    usage_error({"report", "--eval-run", "7"}, "no eval run 7 in x.db; `moonspan runs` lists them")
    usage_error({"report", "--run", "abc"}, "--run 'abc' is not a run id")
    usage_error({"report", "--evals", "some"}, "--evals 'some' is not a mode; use --evals exclude, include or only")
    usage_error({"report", "--attr", "user"}, "--attr 'user' has no '='; give key=value")
    usage_error({"report", "--since", "1h", "--until", "2h"}, "--until must be a shorter time ago than --since")
    usage_error({"report", "--until", "1h", "--since", "1h"}, "--until must be a shorter time ago than --since")
    usage_error({"report", "--eval-run", "1", "--evals", "exclude"}, "drop --evals exclude")
    usage_error({"report", "--overhead", "--run", "1"}, "--overhead reports runs, not traces")
  end)

  it("applies to report --profile", function()
    local r = ms({"report", "--profile", "--run", "1"})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("0 profiled traces, all time, run 1", 1, true), r.out)
    usage_error({"report", "--profile", "--run", "42"}, "no run 42 in x.db")
  end)
end)

describe("moonspan traces with a selection", function()
  it("lists production traces newest first, and says how many eval traces it left out", function()
    assert.are.equal("late,batch,answer_c,answer_b,answer_a", names())
    local r = ms({"traces"})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("\n2 eval traces left out (`--evals include` lists them too", 1, true), r.out)
    local all = ms({"traces", "--evals", "include"})
    assert.is_falsy(all.out:find("left out", 1, true), all.out)
    assert.is_truthy(all.out:find("eval:mini:c1", 1, true), all.out)
  end)

  it("sorts by duration (slowest first) and by cost (costliest first, unknown last)", function()
    assert.are.equal("answer_a,answer_c,answer_b", names("--name", "answer_*", "--sort", "duration"))
    assert.are.equal("answer_c,answer_b,answer_a", names("--name", "answer_*", "--sort", "cost"))
    assert.are.equal("answer_c", names("--name", "answer_*", "--sort", "cost", "--limit", "1"))
    assert.are.equal("late,batch,answer_c,answer_b,answer_a", names("--sort", "start"))
  end)

  it("takes every selection option", function()
    assert.are.equal("eval:mini:c2,eval:mini:c1", names("--run", "2"))
    assert.are.equal("eval:mini:c2,eval:mini:c1", names("--eval-run", "1"))
    assert.are.equal("eval:mini:c2,eval:mini:c1", names("--evals", "only"))
    assert.are.equal("answer_c,answer_a", names("--attr", "tier=1"))
    assert.are.equal("batch", names("--errors"))
    assert.are.equal("batch", names("--errors", "--run", "1"))
    assert.are.equal("", names("--until", "1h"))
    local r = ms({"traces", "--until", "1h"})
    assert.is_truthy(r.out:find("no traces match this selection", 1, true), r.out)
  end)

  it("refuses unknown ids and bad values, exit 2 and one line", function()
    usage_error({"traces", "--run", "99"}, "no run 99 in x.db; `moonspan runs` lists them")
    usage_error({"traces", "--eval-run", "5"}, "no eval run 5 in x.db")
    usage_error({"traces", "--sort", "name"}, "--sort 'name' is not an order")
    usage_error({"traces", "--attr", "=x"}, "empty key")
    usage_error({"traces", "--until", "soon"}, "--until 'soon' is not a duration")
  end)

  it("documents the options in --help", function()
    for _, verb in ipairs({"traces", "report"}) do
      local r = ms({verb, "--help"})
      assert.are.equal(0, r.code)
      for _, opt in ipairs({"--since", "--until", "--name", "--run", "--eval-run", "--evals", "--attr"}) do
        assert.is_truthy(r.out:find(opt, 1, true), verb .. " --help lacks " .. opt)
      end
    end
    assert.is_truthy(ms({"traces", "--help"}).out:find("--sort", 1, true))
    assert.is_truthy(ms({"runs", "--help"}).out:find("--limit", 1, true))
  end)
end)

describe("report --profile's selection", function()
  it("leaves profiled eval traces out by default and says how many", function()
    local dir = H.tmpdir("select-prof")
    local db = dir .. "/x.db"
    H.write(dir .. "/busy.lua", [[
return suite "busy" {
  dataset = {{id = "c1", input = 1}, {id = "c2", input = 2}},
  run = function(case)
    local x = 0
    for i = 1, 3e6 do x = x + i % 7 end
    return x
  end,
  scorers = {max_latency_ms(60000)},
}]])
    local r = H.moonspan({"eval", "--profile", dir .. "/busy.lua"}, {db = db})
    assert.are.equal(0, r.code, r.err)
    local d = H.json(H.moonspan({"report", "--profile", "--json"}, {db = db}).out)
    assert.are.equal(0, d.traces)
    assert.are.equal(2, d.window.evals_left_out)
    local t = H.moonspan({"report", "--profile"}, {db = db})
    assert.is_truthy(t.out:find("0 profiled traces, all time, evals excluded\n2 eval traces left out", 1, true), t.out)
    assert.are.equal(2, H.json(H.moonspan({"report", "--profile", "--json", "--evals", "include"}, {db = db}).out).traces)
  end)
end)
