-- llm.call on the offline mock provider: replies, latency, usage and
-- estimation, retries, errors, and the llm span it records.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")

-- mock's list price (telemetry/prices.tsv): $1 per million input tokens,
-- $5 per million output tokens
local IN_PRICE, OUT_PRICE = 1.00, 5.00

local function msgs(text)
  return {{role = "user", content = text}}
end

-- within 1e-12 absolute plus 1e-9 relative
local function close_to(expected, got, what)
  H.close_to(expected, got, what, 1e-12 + 1e-9 * math.abs(expected))
end

describe("llm.call with the mock provider", function()
  local saved_backoff
  before_each(function()
    saved_backoff = llm.defaults.backoff_ms
    llm.defaults.backoff_ms = 1
  end)
  after_each(function()
    llm.defaults.backoff_ms = saved_backoff
  end)

  describe("in process", function()
    it("echoes the last user message", function()
      local resp = llm.call{model = "mock", system = "be brief", messages = {
        {role = "user", content = "first question"},
        {role = "assistant", content = "an answer"},
        {role = "user", content = "the last one"},
      }}
      assert.are.equal("the last one", resp.text)
      assert.are.equal("mock", resp.model)
      assert.is_string(resp.finish_reason)
      assert.are.equal(0, resp.retries)
    end)

    it("replies with a fixed string or what a reply function returns", function()
      assert.are.equal("fixed", llm.call{model = "mock", messages = msgs("hi"), mock = {reply = "fixed"}}.text)
      local seen
      local resp = llm.call{model = "mock", messages = msgs("abc"), mock = {reply = function(req)
        seen = req
        return req.messages[1].content:upper()
      end}}
      assert.are.equal("ABC", resp.text)
      assert.are.equal("mock", seen.model)
    end)

    it("simulates latency", function()
      local t0 = moonspan.now_ms()
      local resp = llm.call{model = "mock", messages = msgs("slow"), mock = {latency_ms = 40}}
      assert.is_truthy(moonspan.now_ms() - t0 >= 40)
      assert.is_truthy(resp.latency_ms >= 40, "latency_ms " .. tostring(resp.latency_ms))
    end)

    it("reports usage as real providers do, deterministically, and prices it", function()
      local req = {model = "mock", messages = msgs("one two three four five"), mock = {reply = "six seven"}}
      local r1 = llm.call(req)
      local r2 = llm.call(req)
      local u = r1.usage
      assert.are.equal(false, u.estimated)
      assert.are.equal("integer", math.type(u.input_tokens))
      assert.are.equal("integer", math.type(u.output_tokens))
      assert.is_truthy(u.input_tokens >= 5, "input_tokens " .. u.input_tokens)
      assert.is_truthy(u.output_tokens >= 2, "output_tokens " .. u.output_tokens)
      assert.are.equal(0, u.cache_read_tokens)
      assert.are.equal(0, u.cache_write_tokens)
      assert.are.same(r1.usage, r2.usage)
      close_to((u.input_tokens * IN_PRICE + u.output_tokens * OUT_PRICE) / 1e6, r1.cost_usd, "cost_usd")
      -- a longer prompt costs more input tokens
      local longer = llm.call{model = "mock", messages = msgs("one two three four five six seven eight"),
                              mock = {reply = "six seven"}}
      assert.is_truthy(longer.usage.input_tokens > u.input_tokens)
      assert.are.equal(u.output_tokens, longer.usage.output_tokens)
    end)

    it("estimates tokens, and says so, when the provider gives no usage", function()
      local resp = llm.call{model = "mock", messages = msgs("some words to count here"),
                            mock = {reply = "a reply of several words", usage = false}}
      assert.are.equal(true, resp.usage.estimated)
      assert.is_truthy(resp.usage.input_tokens > 0)
      assert.is_truthy(resp.usage.output_tokens > 0)
    end)

    it("retries retryable failures and succeeds", function()
      local resp = llm.call{model = "mock", messages = msgs("retry me"), mock = {fail = {status = 429, times = 2}}}
      assert.are.equal("retry me", resp.text)
      assert.are.equal(2, resp.retries)
    end)

    it("does not retry a 400 and raises a table error with one-line tostring", function()
      local ok, err = pcall(llm.call, {model = "mock", messages = msgs("bad"),
                                       mock = {fail = {status = 400, times = 1}}})
      assert.is_false(ok)
      assert.is_table(err)
      assert.are.equal("invalid_request_error", err.type)
      assert.are.equal(400, err.status)
      assert.are.equal(false, err.retryable)
      assert.are.equal("mock", err.provider)
      local s = tostring(err)
      assert.is_nil(s:find("\n", 1, true), s)
      assert.is_truthy(s:find("400", 1, true), s)
      assert.is_truthy(s:find("invalid_request_error", 1, true), s)
    end)

    it("raises the last error after the retries run out", function()
      local ok, err = pcall(llm.call, {model = "mock", messages = msgs("down"), retries = 2,
                                       mock = {fail = {status = 503, times = 10, message = "unavailable"}}})
      assert.is_false(ok)
      assert.are.equal(503, err.status)
      assert.are.equal(true, err.retryable)
      assert.are.equal("unavailable", err.message)
    end)

    it("gives clear errors for a missing model, empty messages and unknown providers", function()
      local ok, err = pcall(llm.call, {messages = msgs("x")})
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("model", 1, true), tostring(err))
      ok, err = pcall(llm.call, {model = "mock", messages = {}})
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("messages", 1, true), tostring(err))
      ok, err = pcall(llm.call, {model = "mock"})
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("messages", 1, true), tostring(err))
      ok, err = pcall(llm.call, {model = "mock", provider = "no_such_provider", messages = msgs("x")})
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("no_such_provider", 1, true), tostring(err))
      assert.is_truthy(tostring(err):find("provider", 1, true), tostring(err))
      ok, err = pcall(llm.call, "not a table")
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("table", 1, true), tostring(err))
    end)
  end)

  describe("in the store", function()
    local run = H.once(function()
      return H.run_ok([=[
        local cjson = require "cjson"
        llm.defaults.backoff_ms = 1
        local out = {}
        local function call(key, req)
          req.messages = req.messages or {{role = "user", content = "hello there world"}}
          local ok, resp = pcall(llm.call, req)
          if ok then
            out[key] = {text = resp.text, usage = resp.usage, cost_usd = resp.cost_usd,
                        latency_ms = resp.latency_ms, retries = resp.retries}
          else
            out[key] = {error = type(resp) == "table" and resp.type or tostring(resp)}
          end
        end
        trace("plain", function() call("plain", {model = "mock", mock = {reply = "alpha beta", latency_ms = 25}}) end)
        trace("noisy", function() call("noisy", {model = "mock", mock = {fail = {status = 429, times = 2}}}) end)
        trace("estimated", function() call("estimated", {model = "mock", mock = {usage = false}}) end)
        pcall(trace, "rejected", function()
          call("rejected", {model = "mock", mock = {fail = {status = 400}}})
          error("stop", 0)
        end)
        pcall(trace, "exhausted", function()
          span("wrapper", function()
            local ok, e = pcall(llm.call, {model = "mock", retries = 1, messages = {{role = "user", content = "x"}},
                                           mock = {fail = {status = 500, times = 5}}})
            error(e, 0)
          end)
        end)
        trace("unpriced", function() call("unpriced", {model = "mock-unpriced-model"}) end)
        print(cjson.encode(out))
      ]=], {name = "llm"})
    end)

    local function resp(key) return H.json(run().out)[key] end
    local function llm_span(trace_name)
      local rows = H.query(run().db, "SELECT s.* FROM spans s JOIN traces t ON s.trace_row = t.id "
                                     .. "WHERE t.name = '" .. trace_name .. "' AND s.kind = 'llm'")
      assert.are.equal(1, #rows, "llm spans in " .. trace_name)
      return rows[1]
    end

    it("records one span of kind llm with provider, model, tokens and cost", function()
      local s, r = llm_span("plain"), resp("plain")
      assert.are.equal("alpha beta", r.text)
      assert.are.equal("mock", s.provider)
      assert.are.equal("mock", s.model)
      assert.are.equal("ok", s.status)
      assert.is_truthy(s.name:find("mock", 1, true), s.name)
      assert.are.equal(r.usage.input_tokens, s.input_tokens)
      assert.are.equal(r.usage.output_tokens, s.output_tokens)
      assert.are.equal(0, s.usage_estimated)
      assert.are.equal(0, s.retries)
      close_to((s.input_tokens * IN_PRICE + s.output_tokens * OUT_PRICE) / 1e6, s.cost_usd, "span cost")
      close_to(r.cost_usd, s.cost_usd, "response cost vs span cost")
      local t = H.trace_row(run().db, "plain")
      close_to(s.cost_usd, t.cost_usd, "trace cost")
      assert.are.equal(s.input_tokens, t.input_tokens)
      assert.are.equal(0, t.unknown_cost_calls)
    end)

    it("covers the simulated latency in the span's duration", function()
      local s, r = llm_span("plain"), resp("plain")
      assert.is_truthy(s.duration_ns >= 25e6, "duration_ns " .. s.duration_ns)
      assert.is_truthy(r.latency_ms >= 25)
    end)

    it("records retries=2 and retry_succeeded=1 after two 429s", function()
      local s, r = llm_span("noisy"), resp("noisy")
      assert.are.equal(2, r.retries)
      assert.are.equal("ok", s.status)
      assert.are.equal(2, s.retries)
      assert.are.equal(1, s.retry_succeeded)
    end)

    it("marks estimated usage in the response and the span", function()
      local s, r = llm_span("estimated"), resp("estimated")
      assert.are.equal(true, r.usage.estimated)
      assert.are.equal(1, s.usage_estimated)
      assert.is_truthy(s.input_tokens > 0)
      assert.are.equal(r.usage.input_tokens, s.input_tokens)
    end)

    it("makes one attempt on a 400 and records the error on the llm span", function()
      local s = llm_span("rejected")
      assert.are.equal("invalid_request_error", resp("rejected").error)
      assert.are.equal("error", s.status)
      assert.are.equal(1, s.error_own)
      assert.are.equal("invalid_request_error", s.error_type)
      assert.are.equal(0, s.retries)
      local n = H.scalar(run().db, "SELECT count(*) FROM span_events e JOIN traces t ON e.trace_row = t.id "
                                   .. "WHERE t.name = 'rejected' AND e.name = 'attempt_failed'")
      assert.are.equal(1, n)
    end)

    it("records retry_succeeded=0 when every attempt failed", function()
      local s = llm_span("exhausted")
      assert.are.equal("error", s.status)
      assert.are.equal(1, s.retries)
      assert.are.equal(0, s.retry_succeeded)
      assert.are.equal("server_error", s.error_type)
      local _, by = H.spans(run().db, "exhausted")
      -- the same error re-raised by the wrapper is counted once, at the llm span
      assert.are.equal(0, by.wrapper.error_own)
      assert.are.equal(1, H.trace_row(run().db, "exhausted").error_count)
    end)

    it("reports cost as unknown, not $0, for a model without a price", function()
      local s, r = llm_span("unpriced"), resp("unpriced")
      assert.is_nil(r.cost_usd)
      assert.is_nil(s.cost_usd)
      assert.is_truthy(s.input_tokens > 0)
      local t = H.trace_row(run().db, "unpriced")
      assert.is_nil(t.cost_usd)
      assert.are.equal(1, t.unknown_cost_calls)
    end)

    it("uses prices from --prices FILE over the built-in table", function()
      local dir = H.tmpdir("prices")
      local prices = H.write(dir .. "/prices.tsv", "mock  2.00  10.00  0.20  2.50\n")
      local r = H.run_ok([[
        trace("priced", function()
          llm.call{model = "mock", messages = {{role = "user", content = "hello there world"}}}
        end)
      ]], {dir = dir, prices = prices})
      local rows = H.query(r.db, "SELECT input_tokens, output_tokens, cost_usd FROM spans WHERE kind = 'llm'")
      assert.are.equal(1, #rows)
      local s = rows[1]
      close_to((s.input_tokens * 2 + s.output_tokens * 10) / 1e6, s.cost_usd, "overridden cost")
    end)
  end)
end)
