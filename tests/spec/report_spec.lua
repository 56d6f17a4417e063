-- `moonspan report`: the numbers of the production checklist, checked
-- against a database built by a script whose calls and timings are known,
-- and against the stored rows themselves.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")

-- 4 good "answer" requests (plan, search = the slow step, one llm call, manual
-- tokens), 2 "answer" requests that fail in plan with planner_error, one
-- "flaky" request whose llm call succeeds after a retry, one "doomed" request
-- whose llm call fails after a retry. The script prints what the calls
-- returned so the report can be checked against it.
local SCRIPT = [=[
  local cjson = require "cjson"
  llm.defaults.backoff_ms = 1
  local exp = {input = 0, output = 0, cost = 0}
  local function account(resp)
    exp.input = exp.input + resp.usage.input_tokens
    exp.output = exp.output + resp.usage.output_tokens
    exp.cost = exp.cost + resp.cost_usd
  end
  for i = 1, 4 do
    trace("answer", function(ctx)
      span("plan", function() end)
      span("search", function() moonspan.sleep_ms(25) end)
      account(llm.call{model = "mock", messages = {{role = "user", content = "question number " .. i}},
                       mock = {reply = "answer " .. string.rep("word ", i)}})
      ctx:add_tokens{input = 100, output = 10}
      exp.input, exp.output = exp.input + 100, exp.output + 10
    end)
  end
  for i = 1, 2 do
    pcall(trace, "answer", function()
      span("plan", function() error({type = "planner_error", message = "no plan"}) end)
    end)
  end
  trace("flaky", function()
    account(llm.call{model = "mock", messages = {{role = "user", content = "try again"}},
                     mock = {fail = {status = 429, times = 1}}})
  end)
  pcall(trace, "doomed", function()
    llm.call{model = "mock", retries = 1, messages = {{role = "user", content = "never"}},
             mock = {fail = {status = 503, times = 5}}}
  end)
  print(cjson.encode(exp))
]=]

local pct = H.pct

local close_to = H.close_to

describe("moonspan report", function()
  local built = H.once(function()
    local r = H.run_ok(SCRIPT, {name = "report_fixture"})
    r.expected = H.json(r.out)
    return r
  end)

  local function report(args, db)
    local argv = {"report", "--json"}
    for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
    local r = H.moonspan(argv, {db = db or built().db})
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("", r.err)
    local ok, j = pcall(H.json, r.out)
    assert.is_true(ok, "report --json is not JSON: " .. r.out)
    return j
  end
  local full = H.once(function() return report() end)

  it("counts requests and gets their latency percentiles right", function()
    local j = full()
    assert.are.equal(8, j.requests.count)
    local durs = {}
    for _, row in ipairs(H.query(built().db, "SELECT duration_ns FROM traces ORDER BY duration_ns")) do
      durs[#durs + 1] = row.duration_ns / 1e6
    end
    assert.are.equal(8, #durs)
    local lat = j.requests.latency_ms
    close_to(pct(durs, 50), lat.p50, "p50", 1e-6)
    close_to(pct(durs, 95), lat.p95, "p95", 1e-6)
    close_to(pct(durs, 99), lat.p99, "p99", 1e-6)
    close_to(durs[#durs], lat.max, "max", 1e-6)
    assert.is_truthy(lat.max >= 25)
  end)

  it("totals the tokens from llm calls and ctx:add_tokens", function()
    local t, exp = full().tokens, built().expected
    assert.are.equal(exp.input, t.total_input)
    assert.are.equal(exp.output, t.total_output)
    close_to(exp.input / 8, t.avg_input, "avg_input")
    close_to(exp.output / 8, t.avg_output, "avg_output")
    close_to((exp.input + exp.output) / 8, t.avg_total, "avg_total")
    assert.are.equal(0, t.estimated_share)
  end)

  it("totals the cost exactly", function()
    local c, exp = full().cost, built().expected
    close_to(exp.cost, c.total_usd, "total_usd", 1e-15)
    assert.are.equal(0, c.unknown_cost_calls)
  end)

  it("lists the steps with their counts, sorted by total time, shares summing to 1", function()
    local steps = full().steps
    local by = {}
    for _, s in ipairs(steps) do by[s.name] = s end
    assert.are.equal(6, by.plan and by.plan.count)
    assert.are.equal(4, by.search and by.search.count)
    assert.are.equal(6, by["chat mock"] and by["chat mock"].count)
    -- requests are not steps
    assert.is_nil(by.answer)
    assert.is_nil(by.flaky)
    local share = 0
    for i, s in ipairs(steps) do
      share = share + s.share
      if i > 1 then assert.is_truthy(steps[i - 1].total_ms >= s.total_ms, "steps not sorted by total_ms") end
    end
    close_to(1, share, "sum of shares", 1e-6)
    local durs, total = {}, 0
    for _, row in ipairs(H.query(built().db, "SELECT duration_ns FROM spans WHERE name = 'search' ORDER BY 1")) do
      durs[#durs + 1] = row.duration_ns / 1e6
      total = total + row.duration_ns / 1e6
    end
    close_to(pct(durs, 50), by.search.p50_ms, "search p50", 1e-6)
    close_to(pct(durs, 95), by.search.p95_ms, "search p95", 1e-6)
    close_to(total, by.search.total_ms, "search total", 1e-6)
  end)

  it("names the slowest step", function()
    local j = full()
    assert.are.equal("search", j.slowest_step.name)
    assert.is_truthy(j.slowest_step.p95_ms >= 25)
  end)

  it("gives the error rate and the most common error", function()
    local e = full().errors
    close_to(3 / 8, e.rate, "error rate")
    assert.is_table(e.top)
    assert.is_table(e.top[1])
    assert.are.equal("planner_error", e.top[1].type)
    assert.are.equal("no plan", e.top[1].message)
    assert.are.equal(2, e.top[1].count)
  end)

  it("counts retried calls and how often the retry saved them", function()
    local r = full().retries
    assert.are.equal(2, r.retried_calls)
    assert.are.equal(1, r.succeeded)
    close_to(0.5, r.success_rate, "success_rate")
  end)

  it("gives a cost trend whose periods add up", function()
    local trend = full().cost_trend
    assert.is_table(trend)
    assert.are.equal(1, #trend)
    assert.are.equal(8, trend[1].requests)
    close_to(built().expected.cost, trend[1].cost_usd, "trend cost", 1e-15)
    assert.is_truthy(trend[1].period:match("^%d%d%d%d%-%d%d%-%d%d$"), trend[1].period)
    local by_month = report({"--by", "month"}).cost_trend
    assert.is_truthy(by_month[1].period:match("^%d%d%d%d%-%d%d$"), by_month[1].period)
  end)

  it("filters by --name glob", function()
    assert.are.equal(6, report({"--name", "answer"}).requests.count)
    local j = report({"--name", "fl*"})
    assert.are.equal(1, j.requests.count)
    assert.are.equal(1, j.retries.retried_calls)
    assert.are.equal(0, j.errors.rate)
    assert.are.equal(0, report({"--name", "nothing_matches*"}).requests.count)
  end)

  it("filters by --since, and groups the trend by day", function()
    -- a copy of the store with the two "doomed"/"flaky" traces moved 3 days back
    local r = H.run_ok(SCRIPT, {name = "report_since"})
    local shift = 3 * 86400 * 1000000000
    -- (span and event times are stored from their trace's start: moving it moves them)
    H.query(r.db, string.format([[
      UPDATE traces SET start_ns = start_ns - %d WHERE name IN ('doomed', 'flaky');]], shift))
    assert.are.equal(8, report({}, r.db).requests.count)
    assert.are.equal(6, report({"--since", "1d"}, r.db).requests.count)
    assert.are.equal(6, report({"--since", "2h"}, r.db).requests.count)
    assert.are.equal(8, report({"--since", "4d"}, r.db).requests.count)
    local trend = report({}, r.db).cost_trend
    assert.are.equal(2, #trend)
    assert.are.equal(8, trend[1].requests + trend[2].requests)
  end)

  it("prints a text report naming the slowest step and the top error", function()
    local r = H.moonspan({"report"}, {db = built().db})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("search", 1, true), r.out)
    assert.is_truthy(r.out:find("planner_error", 1, true), r.out)
    assert.is_nil(r.out:find("^%s*{"), "text report looks like JSON")
  end)
end)

describe("moonspan report on work that failed or was cut short", function()
  -- "doomed": ten LLM calls that fail after their retries, each caught,
  -- so the request itself succeeds. "abandon": a span left open in a
  -- coroutine never resumed (stored as incomplete). "waits": retries
  -- that waited 30 ms and 20 ms in backoff.
  local built = H.once(function()
    return H.run_ok([[
      llm.defaults.backoff_ms = 0 -- their waits add nothing to "waits" below
      trace("doomed", function()
        for i = 1, 10 do
          pcall(llm.call, {model = "mock", retries = 1, messages = {{role = "user", content = "x"}},
                           mock = {fail = {status = 503, times = 5}}})
        end
      end)
      trace("abandon", function()
        local co = coroutine.create(function() span("left_open", function() coroutine.yield() end) end)
        coroutine.resume(co)
        span("finished", function() end)
      end)
      trace("waits", function()
        span("with_retries", function(s) s:add_retries(2, true, 30) end)
        span("more_retries", function(s) s:add_retries(1, false, 20) end)
      end)
    ]], {name = "cut_short"})
  end)

  local function report(args)
    local argv = {"report"}
    for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
    local r = H.moonspan(argv, {db = built().db})
    assert.are.equal(0, r.code, r.err)
    return r
  end

  it("counts LLM calls that failed after their retries, though their request succeeded", function()
    local j = H.json(report({"--json"}).out)
    assert.are.equal(10, j.llm_calls.count)
    assert.are.equal(10, j.llm_calls.failed)
    assert.are.equal(1, j.llm_calls.failure_rate)
    assert.are.equal(0, j.errors.rate)
    local text = report().out
    assert.is_truthy(text:find("LLM calls   10, 10 failed (100.0%, after their retries)", 1, true), text)
  end)

  it("leaves spans still open when their trace ended out of the steps", function()
    local by = {}
    for _, s in ipairs(H.json(report({"--json"}).out).steps) do by[s.name] = s end
    assert.are.equal("incomplete", H.spans(built().db, "abandon")[2].status)
    assert.is_nil(by.left_open)
    assert.are.equal(1, by.finished and by.finished.count)
  end)

  it("adds up the time spent waiting in backoff", function()
    local j = H.json(report({"--json"}).out)
    -- 50 ms given by hand; the failed calls' zero-length waits add microseconds
    assert.is_truthy(j.retries.backoff_ms_total >= 50 and j.retries.backoff_ms_total < 50.5, j.retries.backoff_ms_total)
    assert.is_truthy(math.abs(j.retries.backoff_ms_per_request - j.retries.backoff_ms_total / 3) < 1e-9)
    assert.are.equal(50e6, H.scalar(built().db,
      "SELECT sum(backoff_ns) FROM spans WHERE name IN ('with_retries', 'more_retries')"))
    local text = report().out
    assert.is_truthy(text:find("50.0 ms waiting in backoff (16.7 ms per request)", 1, true), text)
  end)

  it("counts interrupted requests apart: not errors, not in the latency", function()
    -- a request done, then one a real SIGINT cuts short after 300 ms
    local r = H.run_bg([[
      trace("quick", function() span("fast", function() end) end)
      trace("cut", function() span("slow", function() ready(); moonspan.sleep_ms(10000) end) end)
    ]], "sleep 0.3; kill -INT $pid", {name = "interrupted"})
    assert.are.equal(130, r.status, r.err)
    local rep = H.moonspan({"report", "--json"}, {db = r.db})
    assert.are.equal(0, rep.code, rep.err)
    local j = H.json(rep.out)
    assert.are.equal(2, j.requests.count)
    assert.are.equal(1, j.requests.interrupted)
    assert.are.equal(0, j.requests.incomplete)
    assert.are.equal(0, j.errors.rate)
    assert.are.equal(0, #j.errors.top)
    assert.is_truthy(j.requests.latency_ms.max < 200, "the cut request counted in the latency")
    assert.are.equal(1, #j.steps)
    assert.are.equal("fast", j.steps[1].name)
    local text = H.moonspan({"report"}, {db = r.db})
    assert.is_truthy(text.out:find("Cut short   1 interrupted", 1, true), text.out)
  end)
end)
