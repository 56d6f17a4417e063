-- `moonspan eval` end to end: the real binary, a real store, real HTTP for
-- alerts. The DSL and scorers themselves are covered in eval_dsl_spec.lua.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local EH = dofile(here .. "eval_helpers.lua")
local fake = dofile(here .. "fake_server.lua").start(H)

teardown(function() fake.stop() end)

local QA = H.root .. "/examples/evals/qa_suite.lua"

local function eval(args, opts)
  opts = opts or {}
  local all = {"eval"}
  for _, a in ipairs(args) do all[#all + 1] = a end
  return H.moonspan(all, {db = opts.db, cwd = opts.cwd, env = opts.env})
end

-- A suite file in its own folder; `cases` is Lua source for the case list.
local function write_suite(dir, name, body)
  return H.write(dir .. "/" .. name .. ".lua", body)
end

describe("moonspan eval on the example suite", function()
  local dir, db, r
  setup(function()
    dir = H.tmpdir("qa")
    db = dir .. "/x.db"
    r = eval({"--junit", dir .. "/junit.xml", QA}, {db = db})
  end)

  it("exits 1 because 8/10 is under the suite's 0.9 threshold, listing the failed cases", function()
    assert.are.equal(1, r.code, r.err)
    assert.is_truthy(r.out:find("australia", 1, true), r.out)
    assert.is_truthy(r.out:find("mongolia", 1, true), r.out)
    assert.is_truthy(r.out:find("80.0%", 1, true), r.out)
  end)

  it("runs each case as its own trace and names it in the failure table", function()
    local rows = H.query(db, "SELECT case_id, pass, trace_id, scores FROM eval_results ORDER BY case_id")
    assert.are.equal(10, #rows)
    local failed = 0
    for _, row in ipairs(rows) do
      local t = H.query(db, "SELECT name FROM traces WHERE trace_id = '" .. row.trace_id .. "'")
      assert.are.equal("eval:capital-cities:" .. row.case_id, t[1].name)
      if row.pass == 0 then
        failed = failed + 1
        assert.is_truthy(r.out:find(row.trace_id, 1, true), "failure table lacks " .. row.trace_id)
        local show = H.moonspan({"show", row.trace_id}, {db = db})
        assert.are.equal(0, show.code, show.err)
        assert.is_truthy(show.out:find("chat mock", 1, true))
      end
      assert.are.equal(3, #H.json(row.scores))
    end
    assert.are.equal(2, failed)
  end)

  it("stores the run with its totals", function()
    local run = H.query(db, "SELECT suite, status, cases, passed, pass_rate, threshold, p50_ms, cost_usd FROM eval_runs")[1]
    assert.are.equal("capital-cities", run.suite)
    assert.are.equal("failed", run.status)
    assert.are.equal(10, run.cases)
    assert.are.equal(8, run.passed)
    assert.are.equal(0.8, run.pass_rate)
    assert.are.equal(0.9, run.threshold)
    assert.is_true(run.p50_ms >= 20)
    assert.is_true(run.cost_usd > 0)
  end)

  it("writes JUnit XML that parses back with the right counts", function()
    local xml = EH.parse_xml(H.read(dir .. "/junit.xml"))
    local suites = EH.children(xml, "testsuite")
    assert.are.equal(1, #suites)
    assert.are.equal("10", suites[1].attrs.tests)
    assert.are.equal("2", suites[1].attrs.failures)
    local failures = 0
    for _, tc in ipairs(EH.children(suites[1], "testcase")) do
      failures = failures + #EH.children(tc, "failure")
    end
    assert.are.equal(2, failures)
  end)

  it("shows up in moonspan report as the suite's latest run", function()
    local rep = H.moonspan({"report", "--json"}, {db = db})
    assert.are.equal(0, rep.code, rep.err)
    local evals = H.json(rep.out).evals
    assert.are.equal(1, #evals)
    assert.are.equal("capital-cities", evals[1].suite)
    assert.are.equal(0.8, evals[1].pass_rate)
    assert.are.equal(2, #evals[1].failing)
    assert.is_string(evals[1].failing[1].trace_id)
  end)
end)

describe("gates", function()
  local dir
  setup(function()
    dir = H.tmpdir("gates")
    write_suite(dir, "ok", [[
      return suite "all-pass" {
        dataset = {{id = "a", input = "x", expected = "x"}, {id = "b", input = "y", expected = "y"}},
        run = function(case) return case.input end,
        scorers = {exact(case_field "expected")},
      }]])
  end)

  it("exit 0 when every suite reaches its threshold", function()
    assert.are.equal(0, eval({dir .. "/ok.lua"}, {db = dir .. "/x.db"}).code)
  end)

  it("--fail-under gates too: the example at 80% fails under 0.5? no; under 0.85 it fails", function()
    local r = eval({"--fail-under", "0.85", dir .. "/ok.lua"}, {db = dir .. "/x.db"})
    assert.are.equal(0, r.code, r.err) -- 100% passes both gates
    local qa = eval({"--fail-under", "0.85", QA}, {db = dir .. "/x.db"})
    assert.are.equal(1, qa.code)
  end)
end)

describe("concurrency", function()
  it("overlaps cases: 10 cases of 200 ms at --concurrency 10 take well under 10 x 200 ms", function()
    local dir = H.tmpdir("conc")
    local f = write_suite(dir, "slow", [[
      local cases = {}
      for i = 1, 10 do cases[i] = {id = "c" .. i, input = "q" .. i} end
      return suite "slow" {
        dataset = cases,
        run = function(case)
          return llm.call{model = "mock", messages = {{role = "user", content = case.input}},
                          mock = {latency_ms = 200}}.text
        end,
        scorers = {function(out, case) return out == case.input end},
      }]])
    local t0 = moonspan.now_ms()
    local r = eval({"--concurrency", "10", f}, {db = dir .. "/x.db"})
    local elapsed = moonspan.now_ms() - t0
    assert.are.equal(0, r.code, r.err)
    assert.is_true(elapsed < 1200, "took " .. elapsed .. " ms")
  end)
end)

describe("--repeat", function()
  it("runs every case K times and reports per-case flakiness", function()
    local dir = H.tmpdir("repeat")
    local f = write_suite(dir, "flaky", [[
      local n = 0
      return suite "flaky" {
        dataset = {{id = "steady", input = "a"}, {id = "wobbly", input = "b"}},
        run = function(case)
          if case.id == "wobbly" then n = n + 1; return n % 2 == 1 and "ok" or "bad" end
          return "ok"
        end,
        scorers = {exact("ok")},
        threshold = 0,
      }]])
    local r = eval({"--repeat", "4", "--concurrency", "1", f}, {db = dir .. "/x.db"})
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(8, H.scalar(dir .. "/x.db", "SELECT count(*) FROM eval_results"))
    assert.are.equal(2, H.scalar(dir .. "/x.db", "SELECT sum(pass) FROM eval_results WHERE case_id = 'wobbly'"))
    assert.is_truthy(r.out:lower():find("flak"), r.out)
    assert.is_truthy(r.out:find("wobbly", 1, true), r.out)
  end)
end)

describe("--baseline", function()
  it("names cases that newly fail and newly pass against the earlier run", function()
    local dir = H.tmpdir("baseline")
    local db = dir .. "/x.db"
    local function suite_with(good)
      return write_suite(dir, "s", string.format([[
        return suite "drift" {
          dataset = {{id = "one", input = "1"}, {id = "two", input = "2"}},
          run = function(case) return case.id == %q and "good" or "bad" end,
          scorers = {exact("good")},
          threshold = 0,
        }]], good))
    end
    assert.are.equal(0, eval({suite_with("one")}, {db = db}).code)
    local r = eval({"--baseline", "last", suite_with("two")}, {db = db})
    assert.are.equal(0, r.code, r.err)
    local text = r.out:lower()
    assert.is_truthy(text:find("newly fail"), r.out)
    assert.is_truthy(text:find("newly pass"), r.out)
    assert.is_truthy(r.out:find("one", 1, true))
    assert.is_truthy(r.out:find("two", 1, true))
  end)
end)

describe("--alert-webhook", function()
  it("posts a Slack-compatible {text} when the suite fails", function()
    local dir = H.tmpdir("alert")
    fake.reset()
    local r = eval({"--alert-webhook", fake.url .. "/v1/chat/completions", QA}, {db = dir .. "/x.db"})
    assert.are.equal(1, r.code, r.err)
    local last = fake.last()
    assert.are.equal("/v1/chat/completions", last.path)
    local body = H.json(last.body)
    assert.is_string(body.text)
    assert.is_truthy(body.text:find("capital-cities", 1, true), body.text)
  end)

  it("reports a dead webhook without crashing or changing the exit status", function()
    local dir = H.tmpdir("alert-dead")
    -- a port nothing listens on: connection refused
    local r = eval({"--alert-webhook", "http://127.0.0.1:1/hook", QA}, {db = dir .. "/x.db"})
    assert.are.equal(1, r.code)
    assert.is_truthy(r.err:lower():find("alert"), r.err)
  end)
end)

describe("--record and --replay", function()
  it("replays a recorded run offline with the same outputs and scores, its cost kept apart", function()
    local dir = H.tmpdir("replay")
    local db = dir .. "/x.db"
    local rec = eval({"--record", QA}, {db = db})
    assert.are.equal(1, rec.code, rec.err)
    local rep = eval({"--replay", "last", QA}, {db = db})
    assert.are.equal(1, rep.code, rep.err)
    local a = H.query(db, "SELECT case_id, output, pass FROM eval_results WHERE eval_run = 1 ORDER BY case_id")
    local b = H.query(db, "SELECT case_id, output, pass, replayed FROM eval_results WHERE eval_run = 2 ORDER BY case_id")
    assert.are.equal(#a, #b)
    for i = 1, #a do
      assert.are.equal(a[i].output, b[i].output)
      assert.are.equal(a[i].pass, b[i].pass)
      assert.are.equal(1, b[i].replayed)
    end
    assert.are.equal(10, H.scalar(db, "SELECT count(*) FROM spans WHERE replayed = 1"))
    local report = H.json(H.moonspan({"report", "--json", "--evals", "only"}, {db = db}).out)
    assert.is_true(report.cost.replayed_usd > 0)
    -- live spend is the recorded run's only
    local live = H.scalar(db, "SELECT sum(cost_usd) FROM spans WHERE kind = 'llm' AND replayed IS NULL")
    assert.is_true(math.abs(report.cost.total_usd - live) < 1e-12)
  end)

  it("fails clearly, naming the call site, on a request the recording has not seen", function()
    local dir = H.tmpdir("replay-miss")
    local db = dir .. "/x.db"
    local function suite_asking(q)
      return write_suite(dir, "s", string.format([[
        return suite "ask" {
          dataset = {{id = "one", input = %q}},
          run = function(case)
            return llm.call{model = "mock", messages = {{role = "user", content = case.input}}}.text
          end,
          scorers = {function() return true end},
        }]], q))
    end
    assert.are.equal(0, eval({"--record", suite_asking("first question")}, {db = db}).code)
    local r = eval({"--replay", "last", suite_asking("a different question")}, {db = db})
    assert.are.equal(1, r.code, r.err)
    local text = r.out .. r.err
    assert.is_truthy(text:find("s.lua:4:", 1, true), text) -- the llm.call line of the suite
    assert.is_truthy(text:find("--record", 1, true), text)
  end)

  it("refuses --record with --replay, and a replay of a run that recorded nothing", function()
    local dir = H.tmpdir("replay-bad")
    local both = eval({"--record", "--replay", "last", QA}, {db = dir .. "/x.db"})
    assert.are.equal(2, both.code)
    assert.are.equal(1, eval({QA}, {db = dir .. "/x.db"}).code)
    local r = eval({"--replay", "last", QA}, {db = dir .. "/x.db"})
    assert.are.equal(2, r.code)
    assert.is_truthy(r.err:find("--record", 1, true), r.err)
  end)
end)

describe("bad input", function()
  local dir
  setup(function() dir = H.tmpdir("bad") end)

  it("a dataset line that is not JSON: exit 2 naming file and line", function()
    H.write(dir .. "/cases.jsonl", '{"id": "a", "input": "x"}\n{"id": "b", input: oops}\n')
    local f = write_suite(dir, "s", [[return suite "s" {dataset = "cases.jsonl", run = function() return "" end,
      scorers = {exact("")}}]])
    local r = eval({f}, {db = dir .. "/x.db"})
    assert.are.equal(2, r.code)
    assert.is_truthy(r.err:find("cases.jsonl:2", 1, true), r.err)
  end)

  it("cases without an id get one from their line, and the run says so", function()
    H.write(dir .. "/noid.jsonl", '{"input": "x"}\n{"input": "y"}\n')
    local f = write_suite(dir, "n", [[return suite "n" {dataset = "noid.jsonl", run = function(c) return c.input end,
      scorers = {function() return true end}}]])
    local r = eval({f}, {db = dir .. "/y.db"})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.err:find("noid.jsonl", 1, true), r.err)
    assert.are.equal(2, H.scalar(dir .. "/y.db", "SELECT count(DISTINCT case_id) FROM eval_results"))
  end)

  it("a scorer that raises fails that case with the error; the suite goes on", function()
    local f = write_suite(dir, "raise", [[return suite "raise" {
      dataset = {{id = "a", input = "x"}, {id = "b", input = "y"}},
      run = function(c) return c.input end,
      scorers = {function(out) if out == "x" then error("scorer exploded") end return true end},
      threshold = 0}]])
    local r = eval({f}, {db = dir .. "/z.db"})
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(1, H.scalar(dir .. "/z.db", "SELECT sum(pass) FROM eval_results"))
    assert.is_truthy(r.out:find("scorer exploded", 1, true), r.out)
  end)

  it("a suite file that returns no suite: exit 2 naming the file", function()
    local f = write_suite(dir, "nothing", "local x = 1\n")
    local r = eval({f}, {db = dir .. "/w.db"})
    assert.are.equal(2, r.code)
    assert.is_truthy(r.err:find("nothing.lua", 1, true), r.err)
  end)

  it("bad flags: exit 2 with the fix", function()
    for _, args in ipairs{{"--concurrency", "0", QA}, {"--fail-under", "1.5", QA}, {"--baseline", "yesterday", QA},
                          {"--alert-webhook", "ftp://x", QA}, {dir .. "/missing.lua"}, {}} do
      local r = eval(args, {db = dir .. "/v.db"})
      assert.are.equal(2, r.code, table.concat(args, " "))
      assert.is_truthy(r.err:find("moonspan eval", 1, true), r.err)
    end
  end)
end)
