-- llm.call against real HTTP on loopback: tests/fake_llm speaks each
-- provider's wire format from tests/fixtures (numbers below are the
-- fixtures' own, see tests/fixtures/README.md) and fails on request.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local fake = dofile(here .. "fake_server.lua").start(H)

local function msgs(text) return {{role = "user", content = text or "hi"}} end

-- a call to the fake server from inside this spec process
local function call(provider, extra)
  local models = {anthropic = "claude-sonnet-4-20250514", openai = "gpt-4o-2024-08-06", ollama = "llama3.2:latest"}
  local req = {model = models[provider], provider = provider, base_url = fake.url,
               api_key = provider ~= "ollama" and "sk-test-key" or nil, messages = msgs(),
               backoff_ms = 1, headers = {}}
  for k, v in pairs(extra or {}) do
    if k == "fault" then req.headers["x-fake-fault"] = v else req[k] = v end
  end
  return llm.call(req)
end

local function pcall_call(provider, extra)
  local ok, err = pcall(call, provider, extra)
  assert.is_false(ok, "expected the call to fail")
  return err
end

teardown(function() fake.stop() end)

describe("anthropic", function()
  it("sends the Messages API request with its headers and reads exact usage, cache included", function()
    local r = call("anthropic", {system = "Be brief.", max_tokens = 300})
    assert.are.equal("Rayleigh scattering makes the sky blue.", r.text)
    assert.are.same({input_tokens = 2095, output_tokens = 503, cache_read_tokens = 512,
                     cache_write_tokens = 1024, estimated = false}, r.usage)
    -- claude-sonnet-4-20* is $3 / $15 / $0.30 / $3.75 per million
    local want = (2095 * 3 + 503 * 15 + 512 * 0.30 + 1024 * 3.75) / 1e6
    assert.is_true(math.abs(r.cost_usd - want) < 1e-12, tostring(r.cost_usd))
    assert.are.equal("stop", r.finish_reason)
    local last = fake.last()
    assert.are.equal("/v1/messages", last.path)
    assert.are.equal("sk-test-key", last.headers["x-api-key"])
    assert.are.equal("2023-06-01", last.headers["anthropic-version"])
    local body = H.json(last.body)
    assert.are.equal("Be brief.", body.system)
    assert.are.equal(300, body.max_tokens)
  end)

  it("streams: on_token gets the pieces in order, usage from message_start and message_delta", function()
    local pieces = {}
    local r = call("anthropic", {on_token = function(p) pieces[#pieces + 1] = p end})
    assert.are.equal("Hello from Anthropic streaming!", r.text)
    assert.are.equal(r.text, table.concat(pieces))
    assert.is_true(#pieces > 1)
    assert.are.same({input_tokens = 25, output_tokens = 15, cache_read_tokens = 7,
                     cache_write_tokens = 13, estimated = false}, r.usage)
    assert.is_true(H.json(fake.last().body).stream)
    assert.is_number(r.ttft_ms)
  end)

  it("retries 529 overloaded_error and raises the provider's type when it persists", function()
    local err = pcall_call("anthropic", {fault = "529", retries = 1})
    assert.are.equal("overloaded_error", err.type)
    assert.are.equal(529, err.status)
    assert.are.equal("anthropic", err.provider)
    assert.is_true(err.retryable)
    assert.is_truthy(tostring(err):find("overloaded_error", 1, true))
    assert.is_nil(tostring(err):find("\n"))
  end)
end)

describe("openai", function()
  it("reads prompt_tokens minus cached_tokens as input, cached as cache reads", function()
    local r = call("openai")
    assert.are.equal("Paris is the capital of France.", r.text)
    assert.are.same({input_tokens = 1117 - 1024, output_tokens = 46, cache_read_tokens = 1024,
                     cache_write_tokens = 0, estimated = false}, r.usage)
    local last = fake.last()
    assert.are.equal("/v1/chat/completions", last.path)
    assert.are.equal("Bearer sk-test-key", last.headers["authorization"])
  end)

  it("streams with stream_options.include_usage and reads the final usage chunk", function()
    local r = call("openai", {stream = true})
    assert.are.equal("Hello from OpenAI streaming!", r.text)
    assert.are.same({input_tokens = 37 - 12, output_tokens = 19, cache_read_tokens = 12,
                     cache_write_tokens = 0, estimated = false}, r.usage)
    local body = H.json(fake.last().body)
    assert.is_true(body.stream)
    assert.is_true(body.stream_options.include_usage)
  end)

  it("accepts a base URL ending in /v1, as OPENAI_BASE_URL usually does", function()
    local r = call("openai", {base_url = fake.url .. "/v1"})
    assert.are.equal("Paris is the capital of France.", r.text)
    assert.are.equal("/v1/chat/completions", fake.last().path)
  end)
end)

describe("ollama", function()
  it("reads prompt_eval_count and eval_count, costs $0 and keeps Ollama's timings", function()
    local r = call("ollama")
    assert.are.equal("Llamas are members of the camelid family.", r.text)
    assert.are.equal(47, r.usage.input_tokens)
    assert.are.equal(131, r.usage.output_tokens)
    assert.is_false(r.usage.estimated)
    assert.are.equal(0, r.cost_usd)
    assert.is_number(r.timings.total_ms)
    assert.are.equal("/api/chat", fake.last().path)
    assert.is_false(H.json(fake.last().body).stream) -- Ollama streams unless told not to
  end)

  it("streams NDJSON", function()
    local pieces = {}
    local r = call("ollama", {on_token = function(p) pieces[#pieces + 1] = p end})
    assert.are.equal("Hello from Ollama streaming!", r.text)
    assert.are.equal(r.text, table.concat(pieces))
    assert.are.equal(31, r.usage.input_tokens)
    assert.are.equal(17, r.usage.output_tokens)
  end)

  it("estimates tokens and says so when the response omits usage", function()
    local r = call("ollama", {fault = "no_usage"})
    assert.is_true(r.usage.estimated)
    assert.is_true(r.usage.input_tokens > 0 and r.usage.output_tokens > 0)
    assert.are.equal(0, r.cost_usd)
  end)

  -- tests/fixtures/README.md: chat_cached_prompt.json and its stream lack
  -- prompt_eval_count (Ollama's answer to a prompt it had cached);
  -- chat_no_eval_count.json lacks eval_count
  it("keeps the exact output count when only the input count is missing, and estimates the input", function()
    local text = "Llamas are members of the camelid family."
    local r = call("ollama", {headers = {["x-fake-fixture"] = "chat_cached_prompt.json"}})
    assert.are.equal(text, r.text)
    assert.are.equal(131, r.usage.output_tokens)
    assert.are.equal(llm.estimate_tokens("\nhi"), r.usage.input_tokens)
    assert.is_true(r.usage.estimated)
    r = call("ollama", {stream = true, headers = {["x-fake-fixture"] = "chat_stream_cached_prompt.ndjson"}})
    assert.are.equal("Hello from Ollama streaming!", r.text)
    assert.are.equal(17, r.usage.output_tokens)
    assert.is_true(r.usage.estimated)
    r = call("ollama", {headers = {["x-fake-fixture"] = "chat_no_eval_count.json"}})
    assert.are.equal(47, r.usage.input_tokens)
    assert.are.equal(llm.estimate_tokens(text), r.usage.output_tokens)
    assert.is_true(r.usage.estimated)
  end)
end)

describe("tool calls", function()
  it("come back in one shape from every provider", function()
    local tools = {{name = "get_weather", description = "Weather in a city",
                    parameters = {type = "object", properties = {location = {type = "string"}},
                                  required = {"location"}}}}
    for _, p in ipairs{"anthropic", "openai", "ollama"} do
      local r = call(p, {tools = tools})
      assert.are.equal("tool_calls", r.finish_reason, p)
      assert.are.equal(1, #r.tool_calls, p)
      local c = r.tool_calls[1]
      assert.are.equal("get_weather", c.name, p)
      assert.are.equal("Paris, FR", c.arguments.location, p)
      assert.is_string(c.id, p)
      assert.is_string(c.arguments_json, p)
    end
  end)
end)

describe("retries", function()
  it("retry 429 honouring retry-after-ms, record each attempt, and succeed", function()
    local key = "k429-" .. math.random(1e9)
    local t0 = moonspan.now_ms()
    local r = call("openai", {headers = {["x-fake-fault"] = "429", ["x-fake-fault-times"] = "2",
                                         ["x-fake-key"] = key, ["x-fake-retry-after-ms"] = "120"},
                              backoff_ms = 1})
    local elapsed = moonspan.now_ms() - t0
    assert.are.equal(2, r.retries)
    assert.is_true(elapsed >= 240, "waited " .. elapsed .. " ms, expected 2 x 120 ms")
  end)

  it("honour retry-after in seconds, within the cap", function()
    local key = "kra-" .. math.random(1e9)
    local t0 = moonspan.now_ms()
    local r = call("anthropic", {headers = {["x-fake-fault"] = "429", ["x-fake-fault-times"] = "1",
                                            ["x-fake-key"] = key}, max_retry_after_ms = 300})
    local elapsed = moonspan.now_ms() - t0
    assert.are.equal(1, r.retries)
    -- the server said 1 s; the cap says 300 ms
    assert.is_true(elapsed >= 290 and elapsed < 900, "waited " .. elapsed .. " ms")
  end)

  it("retry 500", function()
    local r = call("openai", {headers = {["x-fake-fault"] = "500", ["x-fake-fault-times"] = "1",
                                         ["x-fake-key"] = "k500-" .. math.random(1e9)}})
    assert.are.equal(1, r.retries)
  end)

  it("retry connection resets", function()
    -- libcurl itself reconnects once when a reused connection dies, so
    -- reset two requests: at least one reaches the retry loop
    fake.reset()
    local r = call("openai", {headers = {["x-fake-fault"] = "reset", ["x-fake-fault-times"] = "2",
                                         ["x-fake-key"] = "kreset-" .. math.random(1e9)}})
    assert.are.equal("Paris is the capital of France.", r.text)
    assert.is_true(r.retries >= 1)
    assert.are.equal(2, fake.stats().faults)
  end)

  it("give up on a server that keeps resetting, with a connection_error", function()
    local err = pcall_call("openai", {fault = "reset", retries = 1})
    assert.are.equal("connection_error", err.type)
    assert.is_true(err.retryable)
  end)

  it("never retry 400 or 401", function()
    for fault, type in pairs{["400"] = "invalid_request_error", ["401"] = "authentication_error"} do
      fake.reset()
      local err = pcall_call("anthropic", {fault = fault})
      assert.are.equal(type, err.type)
      assert.is_false(err.retryable)
      assert.are.equal(1, fake.stats().requests, fault .. " was retried")
    end
  end)

  it("time out a hung server per call and say so", function()
    local t0 = moonspan.now_ms()
    local err = pcall_call("openai", {fault = "hang", timeout_ms = 200, retries = 1})
    assert.are.equal("timeout_error", err.type)
    assert.is_true(err.retryable)
    local elapsed = moonspan.now_ms() - t0
    assert.is_true(elapsed >= 400 and elapsed < 5000, "took " .. elapsed .. " ms")
  end)

  it("fail clearly on malformed JSON, without retrying", function()
    fake.reset()
    local err = pcall_call("openai", {fault = "malformed"})
    assert.are.equal("malformed_response", err.type)
    assert.are.equal(1, fake.stats().requests)
  end)

  it("keep the partial text of a stream that breaks, and do not retry it", function()
    fake.reset()
    local pieces = {}
    local err = pcall_call("openai", {fault = "truncate", on_token = function(p) pieces[#pieces + 1] = p end})
    assert.is_truthy(err.partial_text)
    assert.are.equal(table.concat(pieces), err.partial_text)
    assert.is_true(#err.partial_text > 0)
    assert.are.equal(1, fake.stats().requests)
  end)
end)

describe("on_token", function()
  it("raising inside the callback stops the call and raises that very error, not retried", function()
    fake.reset()
    local mine = {reason = "enough"}
    local ok, err = pcall(call, "anthropic", {on_token = function() error(mine) end})
    assert.is_false(ok)
    assert.are.equal(mine, err)
    assert.are.equal(1, fake.stats().requests)
  end)
end)

describe("the connection", function()
  it("is kept alive between consecutive calls", function()
    fake.reset()
    for _ = 1, 5 do call("openai") end
    assert.are.equal(5, fake.stats().requests)
    assert.are.equal(1, fake.stats().connections)
  end)
end)

describe("parallel calls", function()
  it("overlap: 10 calls to a 200 ms server at concurrency 10 take about one call's time", function()
    local reqs = {}
    for i = 1, 10 do
      reqs[i] = {model = "gpt-4o-2024-08-06", base_url = fake.url, api_key = "k",
                 headers = {["x-fake-fault"] = "delay=200"}, messages = msgs("q" .. i)}
    end
    local t0 = moonspan.now_ms()
    local resps, errs = llm.map(reqs, {concurrency = 10})
    local elapsed = moonspan.now_ms() - t0
    assert.is_nil(errs)
    assert.are.equal(10, #resps)
    assert.is_true(elapsed < 600, "10 concurrent 200 ms calls took " .. elapsed .. " ms")
  end)

  it("llm.map returns errors by index and still answers the rest", function()
    local reqs = {
      {model = "gpt-4o-2024-08-06", base_url = fake.url, api_key = "k", messages = msgs()},
      {model = "gpt-4o-2024-08-06", base_url = fake.url, api_key = "k", messages = msgs(),
       headers = {["x-fake-fault"] = "400"}},
    }
    local resps, errs = llm.map(reqs, {concurrency = 2})
    assert.are.equal("Paris is the capital of France.", resps[1].text)
    assert.is_nil(resps[2])
    assert.are.equal("invalid_request_error", errs[2].type)
  end)
end)

describe("through the binary", function()
  it("records provider, model, usage, cost, ttft and attempts on the llm span; keys never stored", function()
    local key = "sk-ant-SECRET-never-stored-123456789"
    local r = H.run_ok([[
      trace("t", function()
        span("step", function()
          llm.call{model = "claude-sonnet-4-20250514", messages = {{role = "user", content = "hi"}},
                   stream = true, backoff_ms = 1,
                   headers = {["x-fake-fault"] = "500", ["x-fake-fault-times"] = "1", ["x-fake-key"] = arg[1]}}
        end)
        local ok, err = pcall(llm.call, {model = "claude-sonnet-4-20250514",
          messages = {{role = "user", content = "hi"}}, headers = {["x-fake-fault"] = "401"}})
        assert(not ok and err.type == "authentication_error")
        io.stderr:write(tostring(err), "\n")
      end)
    ]], {args = {"kb" .. math.random(1e9)}, env = fake.env{ANTHROPIC_API_KEY = key}})
    local _, by = H.spans(r.db, "t")
    local chat = by["chat claude-sonnet-4-20250514"]
    assert.are.equal("llm", chat.kind)
    assert.are.equal("anthropic", chat.provider)
    assert.are.equal("claude-sonnet-4-20250514", chat.model)
    assert.are.equal(25, chat.input_tokens)
    assert.are.equal(15, chat.output_tokens)
    assert.are.equal(7, chat.cache_read_tokens)
    assert.are.equal(13, chat.cache_write_tokens)
    assert.is_true(chat.ttft_ns > 0)
    assert.are.equal(1, chat.retries)
    assert.are.equal(1, chat.retry_succeeded)
    assert.are.equal(by.step.id, chat.parent)
    local attempts = {}
    for _, e in ipairs(H.events(r.db, "t")) do
      if e.name == "attempt_failed" then attempts[#attempts + 1] = H.json(e.attrs) end
    end
    assert.are.equal(2, #attempts) -- the 500, retried; then the 401, not
    assert.are.equal(500, attempts[1].status)
    assert.is_true(attempts[1].retryable)
    assert.is_true(attempts[1].wait_ms >= 0)
    assert.are.equal(401, attempts[2].status)
    assert.are.equal("authentication_error", attempts[2].type)
    assert.is_false(attempts[2].retryable)
    -- the key is in no byte of the store and in no output
    local bytes = H.read(r.db) .. (H.exists(r.db .. "-wal") and H.read(r.db .. "-wal") or "")
    assert.is_nil(bytes:find(key, 1, true))
    assert.is_nil(r.err:find(key, 1, true))
    assert.is_truthy(r.err:find("authentication_error", 1, true))
  end)

  it("prices a dated response model with no price of its own as the requested model (--prices)", function()
    local dir = H.tmpdir("dated")
    local prices = H.write(dir .. "/prices.tsv", "my-model  2.00  8.00  0.50  -\n")
    local r = H.run_ok([[
      trace("dated", function()
        local r = llm.call{model = "my-model", provider = "openai", messages = {{role = "user", content = "hi"}},
                           headers = {["x-fake-fixture"] = "chat_dated_model.json"}}
        print(r.model, string.format("%.9f", r.cost_usd))
      end)
      trace("own", function()
        llm.call{model = "my-model", provider = "openai", messages = {{role = "user", content = "hi"}}}
      end)
    ]], {dir = dir, prices = prices, env = fake.env()})
    -- chat_dated_model.json: 1117 prompt tokens of which 1024 cached, 46 completion tokens
    local want = ((1117 - 1024) * 2.00 + 46 * 8.00 + 1024 * 0.50) / 1e6
    assert.are.equal(string.format("my-model-2024-08-06\t%.9f\n", want), r.out)
    local _, by = H.spans(r.db, "dated")
    local chat = by["chat my-model"]
    assert.are.equal("my-model-2024-08-06", chat.model)
    assert.is_true(math.abs(chat.cost_usd - want) < 1e-12, tostring(chat.cost_usd))
    -- a response model that has a price keeps it: gpt-4o* is $2.50 / $10 / $1.25
    _, by = H.spans(r.db, "own")
    chat = by["chat my-model"]
    assert.are.equal("gpt-4o-2024-08-06", chat.model)
    local own = ((1117 - 1024) * 2.50 + 46 * 10.00 + 1024 * 1.25) / 1e6
    assert.is_true(math.abs(chat.cost_usd - own) < 1e-12, tostring(chat.cost_usd))
  end)

  it("sends traceparent naming the llm span, so a gateway can link to it", function()
    local r = H.run_ok([[
      trace("tp", function()
        llm.call{model = "gpt-4o-2024-08-06", messages = {{role = "user", content = "hi"}}}
      end)
    ]], {env = fake.env()})
    local _, by = H.spans(r.db, "tp")
    local chat = by["chat gpt-4o-2024-08-06"]
    local tp = fake.last().headers.traceparent
    assert.are.equal("00-" .. chat.trace_id .. "-" .. chat.id .. "-01", tp)
  end)

  it("refuses a call without a key before sending anything", function()
    fake.reset()
    local r = H.run_script([[llm.call{model = "claude-sonnet-4-20250514", messages = {{role = "user", content = "hi"}}}]],
                           {env = fake.env{ANTHROPIC_API_KEY = false}})
    assert.are.equal(1, r.code)
    assert.is_truthy(r.err:find("ANTHROPIC_API_KEY", 1, true), r.err)
    assert.are.equal(0, fake.stats().requests)
  end)

  it("runs examples/tool_agent.lua: every tool call is its own span", function()
    local dir = H.tmpdir("tool_agent")
    local r = H.moonspan({"run", "--quiet", H.root .. "/examples/tool_agent.lua"}, {db = dir .. "/x.db"})
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("17 * 23 = 391, and in Paris: 14:05.\n", r.out)
    local _, by = H.spans(dir .. "/x.db", "tool_agent")
    assert.is_truthy(by["tool:calculator"])
    assert.is_truthy(by["tool:clock"])
    assert.are.equal('{"expression":"17 * 23"}', H.json(by["tool:calculator"].attrs)["tool.arguments"])
  end)

  it("picks the provider from the model name, then MOONSPAN_PROVIDER", function()
    local r = H.run_ok([[
      print(llm.call{model = "llama3.2:latest", messages = {{role = "user", content = "hi"}}}.provider)
      print(llm.call{model = "my-finetune", messages = {{role = "user", content = "hi"}}}.provider)
    ]], {env = fake.env{MOONSPAN_PROVIDER = "openai"}})
    assert.are.equal("ollama\nopenai\n", r.out)
  end)

  it("spans opened inside parallel nest under the span that called it", function()
    local r = H.run_ok([[
      trace("par", function()
        span("fan", function()
          parallel(
            function() return span("a", function() return llm.call{model = "gpt-4o-2024-08-06",
              messages = {{role = "user", content = "a"}}, headers = {["x-fake-fault"] = "delay=100"}} end) end,
            function() return span("b", function() return llm.call{model = "gpt-4o-2024-08-06",
              messages = {{role = "user", content = "b"}}, headers = {["x-fake-fault"] = "delay=100"}} end) end)
        end)
      end)
    ]], {env = fake.env()})
    local rows, by = H.spans(r.db, "par")
    assert.are.equal(by.fan.id, by.a.parent)
    assert.are.equal(by.fan.id, by.b.parent)
    for _, s in ipairs(rows) do
      if s.kind == "llm" then assert.is_true(s.parent == by.a.id or s.parent == by.b.id) end
    end
    -- they overlapped: fan took about one call, not two
    assert.is_true(by.fan.duration_ns < 190e6, "fan took " .. by.fan.duration_ns / 1e6 .. " ms")
  end)
end)
