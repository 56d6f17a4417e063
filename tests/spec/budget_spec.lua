-- Budgets that stop spending: a call that could take a call, request or
-- run budget over is not sent (tests/fake_llm counts what reaches it),
-- fails with budget_exceeded naming the budget, the spend and the
-- estimate, is recorded like any error, and the report counts it.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local fake = dofile(here .. "fake_server.lua").start(H)
local cjson = require "cjson"

teardown(function() fake.stop() end)

-- The worst case the README documents: ~4 bytes a token over the system
-- text and the messages joined by newlines, plus 4 tokens a message, at
-- the higher of the input and cache-write price, plus max_tokens of output.
local function worst(model, contents, max_tokens)
  local text = table.concat({"", table.unpack(contents)}, "\n")
  local input = math.ceil(#text / 4) + 4 * #contents
  local a = moonspan.cost(model, {input_tokens = input, output_tokens = max_tokens})
  local b = moonspan.cost(model, {cache_write_tokens = input, output_tokens = max_tokens})
  return math.max(a, b), input
end

-- What the fake server's fixtures cost (tests/fixtures/*, usage fixed).
local SONNET = "claude-sonnet-4-20250514"
local SONNET_COST = moonspan.cost(SONNET, {input_tokens = 2095, cache_write_tokens = 1024,
                                           cache_read_tokens = 512, output_tokens = 503})

-- Script prelude: ask(label, req) calls llm.call under pcall and prints
-- one JSON line {label, ok, type, kind, budget, spent, estimate, message, cost}.
local PRELUDE = [[
local cjson = require "cjson"
function ask(label, req)
  local ok, r = pcall(llm.call, req)
  local line = {label = label, ok = ok}
  if ok then
    line.cost = r.cost_usd
  else
    line.type, line.kind, line.budget, line.spent = r.type, r.budget_kind, r.budget_usd, r.spent_usd
    line.estimate, line.message, line.retryable = r.estimate_usd, tostring(r), r.retryable
  end
  print(cjson.encode(line))
  return ok
end
function msgs(text) return {{role = "user", content = text}} end
]]

local function results(out)
  local by = {}
  for line in out:gmatch("[^\n]+") do
    local ok, v = pcall(cjson.decode, line)
    if ok and type(v) == "table" and v.label then by[v.label] = H.denull(v) end
  end
  return by
end

local function run(src, opts)
  opts = opts or {}
  opts.env = opts.env or fake.env()
  fake.reset()
  local r = H.run_ok(PRELUDE .. src, opts)
  r.by = results(r.out)
  r.requests = fake.stats().requests
  return r
end

describe("a request budget: trace(name, {budget_usd = X}, fn)", function()
  it("stops a call whose worst case does not fit before the server receives it", function()
    local r = run([[
      trace("small", {budget_usd = 0.001}, function()
        ask("big", {model = "]] .. SONNET .. [[", max_tokens = 1000, messages = msgs("hello")})
      end)]])
    assert.are.equal(0, r.requests)
    local est, input = worst(SONNET, {"hello"}, 1000)
    local b = r.by.big
    assert.is_false(b.ok)
    assert.are.equal("budget_exceeded", b.type)
    assert.are.equal("request", b.kind)
    assert.is_false(b.retryable)
    H.close_to(0.001, b.budget, "budget")
    H.close_to(0, b.spent, "spent")
    H.close_to(est, b.estimate, "estimate")
    assert.is_truthy(b.message:find("llm.call: not sent: the request budget of $0.001 would be exceeded: "
      .. "$0.00 spent, and this call may cost up to " .. string.format("$%.6f", est):gsub("0+$", "")
      .. " (~" .. input .. " input tokens estimated, max_tokens 1000); raise the trace's budget_usd", 1, true),
      b.message)
    -- recorded like any error: on the call's span, with the budget's kind
    local spans = H.spans(r.db, "small")
    local call = spans[2]
    assert.are.equal("chat " .. SONNET, call.name)
    assert.are.equal("llm", call.kind)
    assert.are.equal("error", call.status)
    assert.are.equal("budget_exceeded", call.error_type)
    assert.are.equal(1, call.error_own)
    assert.are.equal(b.message, call.error_message)
    local attrs = cjson.decode(call.attrs)
    assert.are.equal("request", attrs["llm.budget.kind"])
    H.close_to(est, attrs["llm.budget.estimate_usd"], "estimate attribute")
    -- and the trace keeps its budget as an attribute
    assert.are.equal(0.001, cjson.decode(spans[1].attrs).budget_usd)
  end)

  it("adds what the request already spent: later calls stop once the next could go over", function()
    local est = worst(SONNET, {"q"}, 100)
    -- room for two calls (the first costs SONNET_COST), not three
    local limit = 2 * SONNET_COST + est / 2
    local r = run(string.format([[
      for t = 1, 2 do
        trace("req" .. t, {budget_usd = %.17g}, function()
          for i = 1, 3 do ask(t .. "." .. i, {model = %q, max_tokens = 100, messages = msgs("q")}) end
        end)
      end]], limit, SONNET))
    -- each request has its own ledger: 2 calls sent in each
    assert.are.equal(4, r.requests)
    for t = 1, 2 do
      assert.is_true(r.by[t .. ".1"].ok)
      assert.is_true(r.by[t .. ".2"].ok)
      local third = r.by[t .. ".3"]
      assert.are.equal("budget_exceeded", third.type)
      H.close_to(2 * SONNET_COST, third.spent, "spent before the third call")
    end
  end)

  it("is checked: a budget_usd that is not an amount is an error, and span() takes none", function()
    local r = H.run_script([[
      local ok, e = pcall(trace, "t", {budget_usd = "lots"}, function() end)
      print("trace", e)
      ok, e = pcall(trace, "t", {budget_usd = -1}, function() end)
      print("negative", e)
      ok, e = pcall(span, "s", {budget_usd = 1}, function() end)
      print("span", e)
      ok, e = pcall(llm.call, {model = "mock", budget_usd = 0 / 0, max_tokens = 5, messages = {{role = "user", content = "x"}}})
      print("call", e.type, e)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("trace\t[^\n]*budget_usd must be an amount of US dollars >= 0, e.g. budget_usd = 0.05, got lots"), r.out)
    assert.is_truthy(r.out:find("negative\t[^\n]*budget_usd must be an amount of US dollars >= 0[^\n]*got %-1"), r.out)
    assert.is_truthy(r.out:find("span\t[^\n]*span%('s'%): budget_usd is the budget of a whole request; give it to "
      .. "trace%(name, {budget_usd = ...}, fn%)"), r.out)
    assert.is_truthy(r.out:find("call\tinvalid_request_error\t[^\n]*llm.call: budget_usd must be an amount of US dollars"), r.out)
  end)
end)

describe("a call budget: llm.call{budget_usd = X}, llm.defaults.budget_usd", function()
  it("caps one call; the default applies to every call that gives none", function()
    local est = worst("mock", {"hi"}, 100)
    local r = run(string.format([[
      ask("own", {model = "mock", budget_usd = %.17g, max_tokens = 100, messages = msgs("hi")})
      ask("fits", {model = "mock", budget_usd = %.17g, max_tokens = 100, messages = msgs("hi")})
      llm.defaults.budget_usd = %.17g
      ask("default", {model = "mock", max_tokens = 100, messages = msgs("hi")})
      ask("override", {model = "mock", budget_usd = 1, max_tokens = 100, messages = msgs("hi")})
    ]], est * 0.99, est, est * 0.99))
    assert.are.equal("call", r.by.own.kind)
    H.close_to(est, r.by.own.estimate, "estimate")
    assert.is_true(r.by.fits.ok) -- a worst case exactly at the budget fits
    assert.are.equal("call", r.by.default.kind)
    assert.is_truthy(r.by.default.message:find("raise the call's budget_usd (or llm.defaults.budget_usd", 1, true))
    assert.is_true(r.by.override.ok)
  end)

  it("--budget-usd call=X sets llm.defaults.budget_usd", function()
    local r = run([[
      print("default", llm.defaults.budget_usd)
      ask("c", {model = "mock", max_tokens = 1000, messages = msgs("hi")})
    ]], {run_args = {"--budget-usd", "call=0.001"}})
    assert.is_truthy(r.out:find("default\t0.001\n", 1, true), r.out)
    assert.are.equal("call", r.by.c.kind)
  end)

  it("refuses what it cannot bound: no max_tokens, a model with no price; a $0 provider needs neither", function()
    local r = run([[
      trace("t", {budget_usd = 1}, function()
        ask("no_max", {model = "gpt-4o-2024-08-06", messages = msgs("hi")})
        ask("no_price", {model = "my-model", provider = "openai", max_tokens = 10, messages = msgs("hi")})
        -- Anthropic's API needs max_tokens: the adapter's default (1024) bounds the call
        ask("anthropic_default", {model = "]] .. SONNET .. [[", messages = msgs("hi")})
        ask("ollama", {model = "llama3:8b", messages = msgs("hi")})
      end)]])
    assert.are.equal("budget_exceeded", r.by.no_max.type)
    assert.is_truthy(r.by.no_max.message:find("under the request budget of $1.00, this call has no max_tokens, so what "
      .. "it may cost has no bound; pass max_tokens = N", 1, true), r.by.no_max.message)
    assert.are.equal("budget_exceeded", r.by.no_price.type)
    assert.is_truthy(r.by.no_price.message:find("is to model 'my-model', which has no price, so it cannot be shown "
      .. "to fit; give its price with --prices FILE", 1, true), r.by.no_price.message)
    assert.is_true(r.by.anthropic_default.ok)
    assert.is_true(r.by.ollama.ok)
    assert.are.equal(2, r.requests) -- anthropic's and ollama's
  end)
end)

describe("retries count against the budget", function()
  it("an attempt refused with an HTTP status costs nothing: the retry is sent", function()
    local est = worst(SONNET, {"hi"}, 100)
    local r = run(string.format([[
      ask("r", {model = %q, max_tokens = 100, messages = msgs("hi"), budget_usd = %.17g, backoff_ms = 1,
                headers = {["x-fake-fault"] = "429", ["x-fake-fault-times"] = "1", ["x-fake-key"] = "b429",
                           ["x-fake-retry-after-ms"] = "1"}})
    ]], SONNET, est * 1.5))
    assert.are.equal(2, r.requests)
    assert.is_true(r.by.r.ok)
  end)

  it("one that may have been billed (a timeout) counts its worst case: the retry that no longer fits is not sent", function()
    local est = worst(SONNET, {"hi"}, 100)
    local r = run(string.format([[
      trace("retrying", function()
        ask("r", {model = %q, max_tokens = 100, messages = msgs("hi"), budget_usd = %.17g, backoff_ms = 1,
                  timeout_ms = 200, retries = 3, headers = {["x-fake-fault"] = "hang"}})
      end)
    ]], SONNET, est * 1.5))
    assert.are.equal(1, r.requests)
    local e = r.by.r
    assert.are.equal("budget_exceeded", e.type)
    H.close_to(est, e.spent, "spent: the timed-out attempt's worst case")
    assert.is_truthy(e.message:find("this retry may cost up to", 1, true), e.message)
    assert.is_truthy(e.message:find("after attempt 1 failed (timeout_error)", 1, true), e.message)
    local _, by = H.spans(r.db, "retrying")
    assert.are.equal("budget_exceeded", by["chat " .. SONNET].error_type)
    assert.are.equal(1, by["chat " .. SONNET].error_own)
    local events = H.events(r.db, "retrying")
    assert.are.equal(1, #events)
    assert.are.equal("attempt_failed", events[1].name)
  end)
end)

describe("a run budget: --budget-usd X", function()
  it("covers the whole run's live spend, across requests", function()
    local est = worst(SONNET, {"q"}, 100)
    local r = run(string.format([[
      for i = 1, 4 do
        trace("r" .. i, function() ask(tostring(i), {model = %q, max_tokens = 100, messages = msgs("q")}) end)
      end]], SONNET), {run_args = {"--budget-usd", string.format("%.17g", 2 * SONNET_COST + est / 2)}})
    assert.are.equal(2, r.requests)
    assert.is_true(r.by["1"].ok and r.by["2"].ok)
    for _, i in ipairs({"3", "4"}) do
      assert.are.equal("run", r.by[i].kind)
      H.close_to(2 * SONNET_COST, r.by[i].spent, "run spend")
      assert.is_truthy(r.by[i].message:find("raise --budget-usd (run=X)", 1, true))
    end

    -- the report counts the stops by kind, in text and JSON
    local rep = H.moonspan({"report", "--json"}, {db = r.db})
    assert.are.equal(0, rep.code, rep.err)
    local j = H.json(rep.out)
    assert.are.same({count = 2, call = 0, request = 0, run = 2, other = 0}, j.budget_stops)
    local text = H.moonspan({"report"}, {db = r.db})
    assert.is_truthy(text.out:find("\nBudgets     2 calls stopped before sending: run 2\n", 1, true), text.out)
  end)

  it("with request=X gives every trace that sets none its budget, and the kinds add up in the report", function()
    local r = run([[
      trace("default", function()
        ask("d", {model = "mock", max_tokens = 1000, messages = msgs("hi")})
      end)
      trace("own", {budget_usd = 1}, function()
        ask("o", {model = "mock", max_tokens = 1000, messages = msgs("hi")})
        ask("c", {model = "mock", budget_usd = 0, max_tokens = 1000, messages = msgs("hi")})
      end)
    ]], {run_args = {"--budget-usd", "request=0.001,run=5"}})
    assert.are.equal("request", r.by.d.kind)
    assert.is_true(r.by.o.ok)
    assert.are.equal("call", r.by.c.kind)
    local j = H.json(H.moonspan({"report", "--json"}, {db = r.db}).out)
    assert.are.same({count = 2, call = 1, request = 1, run = 0, other = 0}, j.budget_stops)
    local text = H.moonspan({"report"}, {db = r.db}).out
    assert.is_truthy(text:find("\nBudgets     2 calls stopped before sending: call 1, request 1\n", 1, true), text)
  end)

  it("request=X covers the run's own trace too (a script that opens no trace)", function()
    local est = worst("mock", {"hi"}, 100)
    local r = run(string.format([[
      for i = 1, 3 do
        ask(tostring(i), {model = "mock", max_tokens = 100, messages = msgs("hi"), mock = {reply = string.rep("w ", 100)}})
      end
      ask("bad_max", {model = "mock", max_tokens = 2.5, messages = msgs("hi")})
    ]]), {run_args = {"--budget-usd", string.format("request=%.17g", est * 2.5)}})
    assert.is_true(r.by["1"].ok and r.by["2"].ok)
    assert.are.equal("request", r.by["3"].kind)
    -- under a budget, max_tokens must be a count
    assert.are.equal("invalid_request_error", r.by.bad_max.type)
    assert.is_truthy(r.by.bad_max.message:find("max_tokens must be a whole number >= 1", 1, true))
  end)

  it("holds the worst case of calls in flight, so concurrent calls cannot overshoot together", function()
    local est = worst("mock", {"hi"}, 100)
    local r = run(string.format([[
      local reqs = {}
      for i = 1, 3 do reqs[i] = {model = "mock", max_tokens = 100, messages = msgs("hi"), mock = {latency_ms = 100}} end
      local resps, errs = llm.map(reqs, {concurrency = 3})
      local n = 0
      for i = 1, 3 do if resps[i] then n = n + 1 end end
      print("sent", n, errs and errs[3] and errs[3].type, errs and errs[3] and tostring(errs[3]))
    ]]), {run_args = {"--budget-usd", string.format("%.17g", est * 2.5)}})
    assert.is_truthy(r.out:find("sent\t2\tbudget_exceeded\t", 1, true), r.out)
    assert.is_truthy(r.out:find("held by calls in flight", 1, true), r.out)
  end)

  it("is refused when it is not an amount, naming the fix (exit 2)", function()
    local dir = H.tmpdir("bad")
    local script = H.write(dir .. "/s.lua", "print('ran')")
    for _, case in ipairs({
      {"abc", "'abc' is not an amount of dollars >= 0 for run"},
      {"-1", "'-1' is not an amount of dollars >= 0 for run"},
      {"run=1,run=2", "gives the run budget twice; give each kind once"},
      {"week=3", "unknown budget 'week'"},
      {"request=", "request needs an amount of dollars"},
      {"1,", "has an empty part"},
    }) do
      local fix = case[2]:find("twice") and "give each kind once" or "give e.g. --budget-usd 2, or --budget-usd request=0.05,run=2"
      for _, verb in ipairs({"run", "eval"}) do
        local r = H.moonspan({verb, "--budget-usd", case[1], script}, {db = dir .. "/x.db"})
        assert.are.equal(2, r.code, verb .. " " .. case[1])
        assert.are.equal("", r.out)
        assert.is_truthy(r.err:find(case[2], 1, true), r.err)
        assert.is_truthy(r.err:find(fix, 1, true), r.err)
        assert.are.equal(1, H.lines(r.err))
      end
    end
    for _, verb in ipairs({"run", "eval"}) do
      local help = H.moonspan({verb, "--help"})
      assert.is_truthy(help.out:find("--budget-usd SPEC", 1, true), help.out)
    end
  end)
end)

describe("moonspan eval --budget-usd", function()
  local function suite(dir)
    return H.write(dir .. "/paid.lua", [[
      return suite "paid" {
        dataset = {{id = "a", input = "hi"}, {id = "b", input = "hi"}, {id = "c", input = "hi"}},
        run = function(case)
          return llm.call{model = "mock", max_tokens = 100, messages = {{role = "user", content = case.input}},
                          mock = {reply = string.rep("ok ", 100), latency_ms = 20}}.text
        end,
        -- the reply is max_tokens long: a call costs about its worst case
        scorers = {function(out) return out:sub(1, 3) == "ok " end},
      }]])
  end

  it("stops the run's spending across cases; replayed calls spend nothing", function()
    local dir = H.tmpdir("eval")
    local db = dir .. "/x.db"
    local est = worst("mock", {"hi"}, 100)
    local r = H.moonspan({"eval", "--record", "--concurrency", "1", "--budget-usd", string.format("%.17g", est * 2.5),
                          suite(dir)}, {db = db})
    assert.are.equal(1, r.code, r.err)
    local rows = H.query(db, "SELECT case_id, pass, error FROM eval_results ORDER BY case_id")
    assert.are.equal(1, rows[1].pass)
    assert.are.equal(1, rows[2].pass)
    assert.are.equal(0, rows[3].pass)
    assert.is_truthy(rows[3].error:find("the run budget of", 1, true), rows[3].error)
    assert.are.equal(1, H.scalar(db, "SELECT count(*) FROM spans WHERE error_type = 'budget_exceeded' AND error_own = 1"))

    -- replaying run 1 under a budget of $0 sends nothing, so nothing is stopped
    -- (the three cases ask the same, so case c replays a's answer)
    r = H.moonspan({"eval", "--replay", "1", "--budget-usd", "0", suite(dir)}, {db = db})
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.are.equal(3, H.scalar(db, "SELECT count(*) FROM eval_results WHERE eval_run = 2 AND pass = 1"))
    assert.are.equal(1, H.scalar(db, "SELECT count(*) FROM spans WHERE error_type = 'budget_exceeded' AND error_own = 1"))

    -- request=X is each case's budget
    r = H.moonspan({"eval", "--budget-usd", string.format("request=%.17g", est * 0.5), suite(dir)}, {db = db})
    assert.are.equal(1, r.code)
    assert.are.equal(3, H.scalar(db, "SELECT count(*) FROM eval_results WHERE eval_run = 3 AND error LIKE "
                                     .. "'%the request budget of%'"))
  end)
end)
