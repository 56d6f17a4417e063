-- The provider adapters (scripts/providers/{anthropic,openai,ollama}.lua):
-- pure request building, response and error parsing, stream parsing fed
-- in awkward chunks, one tool-call shape for all three, and API keys that
-- appear nowhere but in the auth header. Recorded payloads come from
-- tests/fixtures/<provider>/ (taken from the providers' public docs); the
-- few shapes not recorded there (streamed tool calls, stream error events)
-- are written inline from the same docs.
local AH = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "adapter_helpers.lua")
local cjson = require "cjson"

local anthropic = require "moonspan.providers.anthropic"
local openai = require "moonspan.providers.openai"
local ollama = require "moonspan.providers.ollama"
local S = require "moonspan.wire"

local KEY = "sk-test-SECRET-key-0123456789abcdefXYZ"
local WEATHER_ARGS = {location = "Paris, FR", unit = "celsius"}
local SIZES = {"whole", 1, 2, 7, "random"}

local function msgs(text)
  return {{role = "user", content = text}}
end

local WEATHER_TOOL = {
  name = "get_weather",
  description = "Current weather for a place",
  parameters = {type = "object", properties = {location = {type = "string"},
                unit = {type = "string", enum = {"celsius", "fahrenheit"}}}, required = {"location"}},
}

-- Runs `body` through adapter.stream whole, 1 byte at a time, in fixed and
-- in random splits; every run must give the same response and the same
-- on_text pieces. Returns the response and the pieces.
local function stream_all_ways(adapter, body)
  local first, first_pieces
  for _, size in ipairs(SIZES) do
    local seeds = size == "random" and {1, 2, 3, 4, 5, 42, 1234} or {1}
    for _, seed in ipairs(seeds) do
      local resp, pieces, p, err = AH.run_stream(adapter, body, size == "whole" and #body or size, seed)
      assert(resp, string.format("stream failed with size %s seed %d: %s", tostring(size), seed,
                                 err and cjson.encode(err) or "?"))
      assert.are.equal(resp.text, table.concat(pieces))
      assert.are.equal(resp.text, p.text)
      if not first then
        first, first_pieces = resp, pieces
      else
        assert.are.same(first, resp)
        assert.are.same(first_pieces, pieces)
      end
    end
  end
  return first, first_pieces
end

local function expect_usage(resp, input, output, cache_read, cache_write)
  assert.are.same({input_tokens = input, output_tokens = output, cache_read_tokens = cache_read,
                   cache_write_tokens = cache_write}, resp.usage)
  for k, v in pairs(resp.usage) do
    assert.are.equal("integer", math.type(v), k .. " is an integer")
  end
end

local function expect_weather_call(resp, id)
  assert.are.equal(1, #resp.tool_calls)
  local c = resp.tool_calls[1]
  assert.are.same({"arguments", "arguments_json", "id", "name"}, (function()
    local ks = {}
    for k in pairs(c) do ks[#ks + 1] = k end
    table.sort(ks)
    return ks
  end)())
  if id then assert.are.equal(id, c.id) else assert.is_string(c.id) end
  assert.are.equal("get_weather", c.name)
  assert.are.same(WEATHER_ARGS, c.arguments)
  assert.are.same(WEATHER_ARGS, cjson.decode(c.arguments_json))
  assert.are.equal("tool_calls", resp.finish_reason)
end

local function http(status, body, headers)
  return {status = status, headers = headers or {}, body = body}
end

-- a complete tool loop conversation in the normalised shape
local function tool_loop_request(call)
  return {
    model = "m", system = "use tools",
    tools = {WEATHER_TOOL},
    messages = {
      {role = "user", content = "Weather in Paris?"},
      {role = "assistant", content = "Let me check.", tool_calls = {call}},
      {role = "tool", tool_call_id = call.id, content = "18C, sunny"},
      {role = "user", content = "And tomorrow?"},
    },
  }
end

local PARIS_CALL = {id = "call_1", name = "get_weather", arguments = WEATHER_ARGS,
                    arguments_json = '{"location":"Paris, FR","unit":"celsius"}'}

--------------------------------------------------------------------------
describe("stream framing (providers/sse.lua)", function()
  it("splits server-sent events on LF, CRLF and CR, across chunk boundaries", function()
    local body = "event: a\r\ndata: {\"x\":1}\r\n\r\n: keep-alive\n\nevent: b\rdata: line1\rdata: line2\r\r"
      .. "data: no-event-name\n\n"
    for _, size in ipairs({#body, 1, 2, 3}) do
      local got = {}
      local f = S.sse(function(name, data) got[#got + 1] = {name, data} end)
      for _, c in ipairs(AH.split(body, size)) do f:feed(c) end
      assert.is_nil(f:finish())
      assert.are.same({{"a", '{"x":1}'}, {"b", "line1\nline2"}, {"message", "no-event-name"}}, got)
    end
  end)

  it("passes on a whole last event without its blank line, and reports a cut one", function()
    local got = {}
    local f = S.sse(function(_, data) got[#got + 1] = data end)
    f:feed('data: {"a":1}\n\ndata: [DONE]')
    assert.is_nil(f:finish())
    assert.are.same({'{"a":1}', "[DONE]"}, got)
    local g = S.sse(function() error("a cut event must not be dispatched") end)
    g:feed('data: {"a":')
    assert.are.equal('{"a":', g:finish())
  end)

  it("splits NDJSON lines, CRLF included, and passes on a last line without newline", function()
    local got = {}
    local f = S.ndjson(function(l) got[#got + 1] = l end)
    for _, c in ipairs(AH.split('{"a":1}\r\n\n{"b":2}\n{"c":3}', 1)) do f:feed(c) end
    f:finish()
    assert.are.same({'{"a":1}', '{"b":2}', '{"c":3}'}, got)
  end)

  it("reads retry-after-ms before retry-after, seconds as ms, and ignores HTTP dates", function()
    assert.are.equal(1500, S.retry_after_ms{["retry-after-ms"] = "1500", ["retry-after"] = "30"})
    assert.are.equal(30000, S.retry_after_ms{["retry-after"] = "30"})
    assert.are.equal(2500, S.retry_after_ms{["retry-after"] = "2.5"})
    assert.are.equal(250, S.retry_after_ms{["retry-after-ms"] = "250"})
    assert.is_nil(S.retry_after_ms{["retry-after"] = "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert.is_nil(S.retry_after_ms{})
    assert.is_nil(S.retry_after_ms(nil))
  end)

  it("keeps raw JSON fragments byte for byte (empty arrays stay arrays)", function()
    local out = S.encode({a = S.raw('{"list":[],"n":null}'), b = "x"})
    local back = cjson.decode(out)
    assert.are.equal(cjson.null, back.a.n)
    assert.is_truthy(out:find('{"list":[],"n":null}', 1, true))
    -- a string that looks like the placeholder is not touched
    assert.are.equal("\1raw1:1\1", cjson.decode(S.encode({s = "\1raw1:1\1"})).s)
  end)
end)

--------------------------------------------------------------------------
describe("anthropic adapter", function()
  it("declares its name, environment and key requirement", function()
    assert.are.equal("anthropic", anthropic.name)
    assert.are.same({key = "ANTHROPIC_API_KEY", base = "ANTHROPIC_BASE_URL",
                     default_base = "https://api.anthropic.com"}, anthropic.env)
    assert.is_true(anthropic.needs_key)
  end)

  describe("build", function()
    it("posts to {base}/v1/messages with x-api-key, anthropic-version and JSON", function()
      local r = anthropic.build({model = "claude-sonnet-4-20250514", messages = msgs("hi")},
                                {base = "http://127.0.0.1:9999", key = KEY})
      assert.are.equal("http://127.0.0.1:9999/v1/messages", r.url)
      assert.are.equal(KEY, r.headers["x-api-key"])
      assert.are.equal("2023-06-01", r.headers["anthropic-version"])
      assert.are.equal("application/json", r.headers["content-type"])
      assert.is_nil(r.headers.authorization)
      for _, base in ipairs({"http://h:1/", "http://h:1/v1", "http://h:1/v1/"}) do
        assert.are.equal("http://h:1/v1/messages", anthropic.build({model = "m", messages = msgs("x")},
                                                                   {base = base, key = KEY}).url)
      end
      assert.are.equal("https://api.anthropic.com/v1/messages",
                       anthropic.build({model = "m", messages = msgs("x")}, {key = KEY}).url)
    end)

    it("puts system at the top level, defaults max_tokens to 1024, maps stop and temperature", function()
      local r = anthropic.build({model = "claude-x", system = "be brief", messages = {
        {role = "user", content = "q1"}, {role = "assistant", content = "a1"}, {role = "user", content = "q2"},
      }, temperature = 0.25, stop = "END"}, {key = KEY})
      local b = AH.json(r.body)
      assert.are.equal("claude-x", b.model)
      assert.are.equal(1024, b.max_tokens)
      assert.are.equal("be brief", b.system)
      assert.are.equal(0.25, b.temperature)
      assert.are.same({"END"}, b.stop_sequences)
      assert.are.same({{role = "user", content = "q1"}, {role = "assistant", content = "a1"},
                       {role = "user", content = "q2"}}, b.messages)
      assert.is_nil(b.stream)
      assert.are.equal(300, AH.json(anthropic.build({model = "m", max_tokens = 300, messages = msgs("x")},
                                                   {key = KEY}).body).max_tokens)
    end)

    it("moves system messages out of the list", function()
      local b = AH.json(anthropic.build({model = "m", messages = {{role = "system", content = "rules"},
                                                                  {role = "user", content = "hi"}}},
                                        {key = KEY}).body)
      assert.are.equal("rules", b.system)
      assert.are.same({{role = "user", content = "hi"}}, b.messages)
    end)

    it("sets stream = true when streaming and merges extra into the body", function()
      local r = anthropic.build({model = "m", messages = msgs("x"), extra = {top_k = 5, metadata = {user_id = "u"}}},
                                {key = KEY, stream = true})
      local b = AH.json(r.body)
      assert.is_true(b.stream)
      assert.are.equal(5, b.top_k)
      assert.are.same({user_id = "u"}, b.metadata)
      assert.is_true(AH.json(anthropic.build({model = "m", stream = true, messages = msgs("x")},
                                             {key = KEY}).body).stream)
    end)

    it("sends no x-api-key when the key is empty (a local proxy)", function()
      assert.is_nil(anthropic.build({model = "m", messages = msgs("x")}, {key = ""}).headers["x-api-key"])
    end)

    it("converts tools to input_schema", function()
      local b = AH.json(anthropic.build({model = "m", messages = msgs("x"), tools = {WEATHER_TOOL,
        {name = "noargs", description = "no parameters"}}}, {key = KEY}).body)
      assert.are.same({{name = "get_weather", description = "Current weather for a place",
                        input_schema = WEATHER_TOOL.parameters},
                       {name = "noargs", description = "no parameters",
                        input_schema = {type = "object", properties = {}}}}, b.tools)
      assert.is_truthy(anthropic.build({model = "m", messages = msgs("x"), tools = {{name = "noargs"}}},
                                       {key = KEY}).body:find('"properties":{}', 1, true))
    end)

    it("drops empty `required` lists and embeds a schema given as JSON text as is", function()
      local body = anthropic.build({model = "m", messages = msgs("x"), tools = {
        {name = "a", parameters = {type = "object", properties = {}, required = {}}},
        {name = "b", parameters = '{"type":"object","properties":{"q":{"type":"string"}},"required":[]}'},
      }}, {key = KEY}).body
      local b = cjson.decode(body)
      assert.is_nil(b.tools[1].input_schema.required)
      assert.is_truthy(body:find('"input_schema":{"type":"object","properties":{"q":{"type":"string"}},"required":[]}', 1, true))
    end)

    it("turns tool calls into tool_use blocks and tool results into a user tool_result message", function()
      local b = AH.json(anthropic.build(tool_loop_request(PARIS_CALL), {key = KEY}).body)
      assert.are.equal("use tools", b.system)
      assert.are.same({
        {role = "user", content = "Weather in Paris?"},
        {role = "assistant", content = {{type = "text", text = "Let me check."},
                                        {type = "tool_use", id = "call_1", name = "get_weather", input = WEATHER_ARGS}}},
        {role = "user", content = {{type = "tool_result", tool_use_id = "call_1", content = "18C, sunny"},
                                   {type = "text", text = "And tomorrow?"}}},
      }, b.messages)
    end)

    it("groups parallel tool results in one user message", function()
      local b = AH.json(anthropic.build({model = "m", messages = {
        {role = "user", content = "two"},
        {role = "assistant", tool_calls = {{id = "a", name = "f", arguments = {}}, {id = "b", name = "g", arguments = {x = 1}}}},
        {role = "tool", tool_call_id = "a", content = "ra"},
        {role = "tool", tool_call_id = "b", content = "rb", is_error = true},
      }}, {key = KEY}).body)
      assert.are.same({role = "assistant", content = {{type = "tool_use", id = "a", name = "f", input = {}},
                                                      {type = "tool_use", id = "b", name = "g", input = {x = 1}}}},
                      b.messages[2])
      assert.are.same({role = "user", content = {{type = "tool_result", tool_use_id = "a", content = "ra"},
                                                 {type = "tool_result", tool_use_id = "b", content = "rb", is_error = true}}},
                      b.messages[3])
      assert.are.equal(3, #b.messages)
    end)
  end)

  describe("parse", function()
    it("reads message.json with its exact usage, cache tokens included", function()
      local r = anthropic.parse(http(200, AH.fixture("anthropic", "message.json")))
      assert.are.equal("Rayleigh scattering makes the sky blue.", r.text)
      assert.are.equal("claude-sonnet-4-20250514", r.model)
      assert.are.equal("stop", r.finish_reason)
      expect_usage(r, 2095, 503, 512, 1024)
      assert.is_nil(r.tool_calls)
      assert.is_nil(r.cost_usd)
      assert.is_nil(r.timings)
    end)

    it("reads tool_use.json into tool_calls", function()
      local r = anthropic.parse(http(200, AH.fixture("anthropic", "tool_use.json")))
      assert.are.equal("I'll check the current weather in Paris for you.", r.text)
      expect_weather_call(r, "toolu_01FakeLLMWeatherParis")
      expect_usage(r, 412, 87, 256, 128)
    end)

    it("gives usage = nil when the response has none", function()
      assert.is_nil(anthropic.parse(http(200, AH.fixture("anthropic", "message_no_usage.json"))).usage)
      assert.is_nil(anthropic.parse(http(200, AH.fixture("anthropic", "tool_use_no_usage.json"))).usage)
    end)

    it("maps stop reasons", function()
      local body = AH.json(AH.fixture("anthropic", "message.json"))
      for from, to in pairs({end_turn = "stop", stop_sequence = "stop", max_tokens = "length",
                             tool_use = "tool_calls", refusal = "refusal"}) do
        body.stop_reason = from
        assert.are.equal(to, anthropic.parse(http(200, cjson.encode(body))).finish_reason)
      end
    end)

    local cases = {
      {"error_authentication.json", 401, "authentication_error", false, "invalid x-api-key", "authentication_error"},
      {"error_invalid_request.json", 400, "invalid_request_error", false, "max_tokens: Field required",
       "invalid_request_error"},
      {"error_overloaded.json", 529, "overloaded_error", true, "Overloaded", "overloaded_error"},
      {"error_rate_limit.json", 429, "rate_limit_error", true, "This request would exceed the rate limit",
       "rate_limit_error"},
      {"error_server.json", 500, "server_error", true, "Internal server error", "api_error"},
    }
    for _, c in ipairs(cases) do
      it("raises " .. c[3] .. " for " .. c[1], function()
        local e = AH.catch(anthropic.parse, http(c[2], AH.fixture("anthropic", c[1])))
        assert.are.equal(c[3], e.type)
        assert.are.equal(c[6], e.provider_type)
        assert.are.equal(c[2], e.status)
        assert.are.equal(c[4], e.retryable)
        assert.are.equal("anthropic", e.provider)
        assert.is_truthy(e.message:find(c[5], 1, true), e.message)
        assert.is_nil(e.retry_after_ms)
      end)
    end

    it("takes retry_after_ms from retry-after-ms, else retry-after seconds", function()
      local body = AH.fixture("anthropic", "error_rate_limit.json")
      assert.are.equal(20000, AH.catch(anthropic.parse, http(429, body, {["retry-after"] = "20"})).retry_after_ms)
      assert.are.equal(750, AH.catch(anthropic.parse, http(429, body,
        {["retry-after"] = "20", ["retry-after-ms"] = "750"})).retry_after_ms)
      assert.is_nil(AH.catch(anthropic.parse, http(429, body,
        {["retry-after"] = "Wed, 21 Oct 2015 07:28:00 GMT"})).retry_after_ms)
    end)

    it("raises malformed_response for a 200 that is not the expected JSON", function()
      for _, body in ipairs({'{"id": "msg_1", "content": [', "", "<html>oops</html>", '{"id":"x"}'}) do
        local e = AH.catch(anthropic.parse, http(200, body))
        assert.are.equal("malformed_response", e.type)
        assert.are.equal(200, e.status)
        assert.is_false(e.retryable)
      end
    end)

    it("classifies an error page without JSON by status", function()
      local e = AH.catch(anthropic.parse, http(502, "<html>Bad Gateway</html>"))
      assert.are.equal("server_error", e.type)
      assert.is_nil(e.provider_type)
      assert.is_true(e.retryable)
      assert.is_truthy(e.message:find("502", 1, true))
      for status, retry in pairs({[408] = true, [409] = true, [404] = false, [403] = false, [422] = false,
                                  [503] = true}) do
        assert.are.equal(retry, AH.catch(anthropic.parse, http(status, "")).retryable, "status " .. status)
      end
    end)
  end)

  describe("stream", function()
    it("parses message_stream.sse identically however it is split", function()
      local r, pieces = stream_all_ways(anthropic, AH.fixture("anthropic", "message_stream.sse"))
      assert.are.same({"Hello", " from", " Anthropic", " streaming", "!"}, pieces)
      assert.are.equal("Hello from Anthropic streaming!", r.text)
      assert.are.equal("claude-sonnet-4-20250514", r.model)
      assert.are.equal("stop", r.finish_reason)
      -- input side from message_start, output tokens from message_delta
      expect_usage(r, 25, 15, 7, 13)
      assert.is_nil(r.tool_calls)
    end)

    it("gives usage = nil when the stream carries none", function()
      local r = stream_all_ways(anthropic, AH.fixture("anthropic", "message_stream_no_usage.sse"))
      assert.are.equal("Hello from Anthropic streaming!", r.text)
      assert.is_nil(r.usage)
    end)

    it("reads the same stream with CRLF line endings", function()
      local crlf = AH.fixture("anthropic", "message_stream.sse"):gsub("\n", "\r\n")
      local r = stream_all_ways(anthropic, crlf)
      assert.are.equal("Hello from Anthropic streaming!", r.text)
      expect_usage(r, 25, 15, 7, 13)
    end)

    local tool_stream = AH.sse{
      {"message_start", {type = "message_start", message = {id = "msg_t", type = "message", role = "assistant",
        model = "claude-sonnet-4-20250514", content = {}, usage = {input_tokens = 472, output_tokens = 2}}}},
      {"content_block_start", {type = "content_block_start", index = 0, content_block = {type = "text", text = ""}}},
      {"content_block_delta", {type = "content_block_delta", index = 0, delta = {type = "text_delta", text = "Checking — "}}},
      {"content_block_delta", {type = "content_block_delta", index = 0, delta = {type = "text_delta", text = "☀ Paris"}}},
      {"content_block_stop", {type = "content_block_stop", index = 0}},
      {"content_block_start", '{"type":"content_block_start","index":1,"content_block":'
        .. '{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}'},
      {"content_block_delta", {type = "content_block_delta", index = 1, delta = {type = "input_json_delta", partial_json = ""}}},
      {"content_block_delta", {type = "content_block_delta", index = 1, delta = {type = "input_json_delta", partial_json = '{"location": "Par'}}},
      {"content_block_delta", {type = "content_block_delta", index = 1, delta = {type = "input_json_delta", partial_json = 'is, FR", "unit": "cel'}}},
      {"content_block_delta", {type = "content_block_delta", index = 1, delta = {type = "input_json_delta", partial_json = 'sius"}'}}},
      {"content_block_stop", {type = "content_block_stop", index = 1}},
      {"message_delta", {type = "message_delta", delta = {stop_reason = "tool_use"}, usage = {output_tokens = 89}}},
      {"message_stop", {type = "message_stop"}},
    }

    it("assembles a streamed tool_use from input_json_delta pieces (and splits UTF-8 safely)", function()
      local r, pieces = stream_all_ways(anthropic, tool_stream)
      assert.are.same({"Checking — ", "☀ Paris"}, pieces)
      expect_weather_call(r, "toolu_01T1x1fJ34qAmk2tNTrN7Up6")
      assert.are.equal('{"location": "Paris, FR", "unit": "celsius"}', r.tool_calls[1].arguments_json)
      expect_usage(r, 472, 89, 0, 0)
    end)

    it("raises the error event's type, keeping the text received so far", function()
      local body = AH.fixture("anthropic", "message_stream.sse"):match("^(.-)event: content_block_stop")
        .. 'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
      for _, size in ipairs({#body, 1, 5}) do
        local r, pieces, p, e = AH.run_stream(anthropic, body, size)
        assert.is_nil(r)
        assert.are.equal("overloaded_error", e.type)
        assert.is_true(e.retryable)
        assert.are.equal("Overloaded", e.message)
        assert.are.equal("anthropic", e.provider)
        assert.are.equal("Hello from Anthropic streaming!", p.text)
        assert.are.equal(5, #pieces)
      end
      local _, _, _, e = AH.run_stream(anthropic, 'event: error\ndata: {"type":"error","error":'
        .. '{"type":"invalid_request_error","message":"bad"}}\n\n')
      assert.is_false(e.retryable)
    end)

    it("raises stream_truncated when the body ends before message_stop", function()
      local full = AH.fixture("anthropic", "message_stream.sse")
      local cut = full:sub(1, full:find(" Anthropic", 1, true) + 5) -- inside a data line
      local r, _, p, e = AH.run_stream(anthropic, cut, 3)
      assert.is_nil(r)
      assert.are.equal("stream_truncated", e.type)
      assert.are.equal("Hello from", p.text)
      local _, _, _, e2 = AH.run_stream(anthropic, "")
      assert.are.equal("stream_truncated", e2.type)
    end)

    it("raises the provider error when a JSON error body is fed to the stream", function()
      local _, _, _, e = AH.run_stream(anthropic, AH.fixture("anthropic", "error_overloaded.json"), 4)
      assert.are.equal("overloaded_error", e.type)
    end)

    it("raises malformed_response for an event whose data is not JSON", function()
      local _, _, _, e = AH.run_stream(anthropic, "event: message_start\ndata: {not json\n\n")
      assert.are.equal("malformed_response", e.type)
    end)
  end)
end)

--------------------------------------------------------------------------
describe("openai adapter", function()
  it("declares its name, environment and key requirement", function()
    assert.are.equal("openai", openai.name)
    assert.are.same({key = "OPENAI_API_KEY", base = "OPENAI_BASE_URL", default_base = "https://api.openai.com"},
                    openai.env)
    assert.is_true(openai.needs_key)
  end)

  describe("build", function()
    it("produces /v1/chat/completions exactly once for every form of base URL", function()
      local req = {model = "gpt-4o", messages = msgs("x")}
      assert.are.equal("https://api.openai.com/v1/chat/completions", openai.build(req, {key = KEY}).url)
      for _, base in ipairs({"http://localhost:8000", "http://localhost:8000/", "http://localhost:8000/v1",
                             "http://localhost:8000/v1/"}) do
        assert.are.equal("http://localhost:8000/v1/chat/completions", openai.build(req, {base = base, key = KEY}).url)
      end
      assert.are.equal("http://gw/openai/v1/chat/completions",
                       openai.build(req, {base = "http://gw/openai/v1", key = KEY}).url)
    end)

    it("sends Authorization: Bearer, and no Authorization for an empty or absent key", function()
      local req = {model = "gpt-4o", messages = msgs("x")}
      local r = openai.build(req, {key = KEY})
      assert.are.equal("Bearer " .. KEY, r.headers.authorization)
      assert.are.equal("application/json", r.headers["content-type"])
      assert.is_nil(openai.build(req, {key = ""}).headers.authorization)
      assert.is_nil(openai.build(req, {}).headers.authorization)
    end)

    it("puts system first, maps max_tokens, temperature and stop", function()
      local b = AH.json(openai.build({model = "gpt-4o", system = "be brief", max_tokens = 50, temperature = 0,
                                      stop = {"a", "b"}, messages = msgs("hi")}, {key = KEY}).body)
      assert.are.equal("gpt-4o", b.model)
      assert.are.same({{role = "system", content = "be brief"}, {role = "user", content = "hi"}}, b.messages)
      assert.are.equal(50, b.max_tokens)
      assert.are.equal(0, b.temperature)
      assert.are.same({"a", "b"}, b.stop)
      assert.is_nil(b.stream)
      assert.is_nil(b.stream_options)
    end)

    it("asks for usage in the stream", function()
      local b = AH.json(openai.build({model = "gpt-4o", messages = msgs("hi")}, {key = KEY, stream = true}).body)
      assert.is_true(b.stream)
      assert.are.same({include_usage = true}, b.stream_options)
    end)

    it("converts tools to type function", function()
      local b = AH.json(openai.build({model = "gpt-4o", messages = msgs("x"), tools = {WEATHER_TOOL}}, {key = KEY}).body)
      assert.are.same({{type = "function", ["function"] = {name = "get_weather", description = "Current weather for a place",
                                                          parameters = WEATHER_TOOL.parameters}}}, b.tools)
    end)

    it("turns tool calls into assistant tool_calls and tool results into role tool messages", function()
      local r = openai.build(tool_loop_request(PARIS_CALL), {key = KEY})
      local b = AH.json(r.body)
      assert.are.same({
        {role = "system", content = "use tools"},
        {role = "user", content = "Weather in Paris?"},
        {role = "assistant", content = "Let me check.", tool_calls = {{id = "call_1", type = "function",
          ["function"] = {name = "get_weather", arguments = PARIS_CALL.arguments_json}}}},
        {role = "tool", tool_call_id = "call_1", content = "18C, sunny"},
        {role = "user", content = "And tomorrow?"},
      }, b.messages)
      -- an assistant turn with only tool calls has content null
      local b2 = cjson.decode(openai.build({model = "m", messages = {{role = "assistant",
        tool_calls = {PARIS_CALL}}}}, {key = KEY}).body)
      assert.are.equal(cjson.null, b2.messages[1].content)
    end)
  end)

  describe("parse", function()
    it("reads chat.json: input excludes cached tokens", function()
      local r = openai.parse(http(200, AH.fixture("openai", "chat.json")))
      assert.are.equal("Paris is the capital of France.", r.text)
      assert.are.equal("gpt-4o-2024-08-06", r.model)
      assert.are.equal("stop", r.finish_reason)
      expect_usage(r, 1117 - 1024, 46, 1024, 0)
      assert.is_nil(r.tool_calls)
      assert.is_nil(r.cost_usd)
    end)

    it("reads tool_calls.json", function()
      local r = openai.parse(http(200, AH.fixture("openai", "tool_calls.json")))
      assert.are.equal("", r.text)
      expect_weather_call(r, "call_FakeLLMWeatherParis01")
      assert.are.equal('{"location":"Paris, FR","unit":"celsius"}', r.tool_calls[1].arguments_json)
      expect_usage(r, 309 - 128, 24, 128, 0)
    end)

    it("gives usage = nil when the response has none", function()
      assert.is_nil(openai.parse(http(200, AH.fixture("openai", "chat_no_usage.json"))).usage)
      assert.is_nil(openai.parse(http(200, AH.fixture("openai", "tool_calls_no_usage.json"))).usage)
    end)

    it("counts every prompt token as input when no details are given", function()
      local body = AH.json(AH.fixture("openai", "chat.json"))
      body.usage.prompt_tokens_details = nil
      expect_usage(openai.parse(http(200, cjson.encode(body))), 1117, 46, 0, 0)
    end)

    -- typed by status, as every provider is; OpenAI's own type and code kept
    local cases = {
      {"error_authentication.json", 401, "authentication_error", false, "Incorrect API key provided",
       "invalid_request_error", "invalid_api_key"},
      {"error_invalid_request.json", 400, "invalid_request_error", false, "Invalid value for 'messages[0].role'",
       "invalid_request_error", "invalid_value"},
      {"error_overloaded.json", 503, "overloaded_error", true, "The engine is currently overloaded", "server_error"},
      {"error_rate_limit.json", 429, "rate_limit_error", true, "Rate limit reached for gpt-4o", "tokens",
       "rate_limit_exceeded"},
      {"error_server.json", 500, "server_error", true, "The server had an error", "server_error"},
    }
    for _, c in ipairs(cases) do
      it("raises " .. c[3] .. " for " .. c[1], function()
        local e = AH.catch(openai.parse, http(c[2], AH.fixture("openai", c[1])))
        assert.are.equal(c[3], e.type)
        assert.are.equal(c[6], e.provider_type)
        assert.are.equal(c[7], e.code)
        assert.are.equal(c[2], e.status)
        assert.are.equal(c[4], e.retryable)
        assert.are.equal("openai", e.provider)
        assert.is_truthy(e.message:find(c[5], 1, true), e.message)
      end)
    end

    it("keeps the provider's masked key in its message but never a whole key", function()
      local e = AH.catch(openai.parse, http(401, AH.fixture("openai", "error_authentication.json")))
      assert.is_truthy(e.message:find("sk-fake***********1234", 1, true))
      assert.are.equal("invalid_api_key", e.code)
    end)

    it("takes retry_after_ms from the rate-limit headers", function()
      local body = AH.fixture("openai", "error_rate_limit.json")
      assert.are.equal(624, AH.catch(openai.parse, http(429, body,
        {["retry-after-ms"] = "624", ["retry-after"] = "1"})).retry_after_ms)
      assert.are.equal(1000, AH.catch(openai.parse, http(429, body, {["retry-after"] = "1"})).retry_after_ms)
    end)

    it("reads the error shapes of OpenAI-compatible servers", function()
      local e = AH.catch(openai.parse, http(400, '{"object":"error","message":"max_tokens is too large",'
        .. '"type":"BadRequestError","param":null,"code":400}'))
      assert.are.equal("invalid_request_error", e.type)
      assert.are.equal("BadRequestError", e.provider_type)
      assert.are.equal("max_tokens is too large", e.message)
      local e2 = AH.catch(openai.parse, http(404, '{"error":"model \\"x\\" not found"}'))
      assert.are.equal("not_found_error", e2.type)
      assert.are.equal('model "x" not found', e2.message)
    end)

    it("raises malformed_response for a 200 that is not the expected JSON", function()
      for _, body in ipairs({'{"choices": [{', "not json", '{"id":"x","choices":[]}'}) do
        local e = AH.catch(openai.parse, http(200, body))
        assert.are.equal("malformed_response", e.type)
        assert.is_false(e.retryable)
      end
    end)
  end)

  describe("stream", function()
    it("parses chat_stream.sse identically however it is split, usage from the final chunk", function()
      local r, pieces = stream_all_ways(openai, AH.fixture("openai", "chat_stream.sse"))
      assert.are.same({"Hello", " from", " OpenAI", " streaming", "!"}, pieces)
      assert.are.equal("Hello from OpenAI streaming!", r.text)
      assert.are.equal("gpt-4o-2024-08-06", r.model)
      assert.are.equal("stop", r.finish_reason)
      expect_usage(r, 37 - 12, 19, 12, 0)
    end)

    it("gives usage = nil when the stream carries none", function()
      local r = stream_all_ways(openai, AH.fixture("openai", "chat_stream_no_usage.sse"))
      assert.are.equal("Hello from OpenAI streaming!", r.text)
      assert.is_nil(r.usage)
    end)

    local function chunk(delta, finish, extra)
      local c = {id = "chatcmpl-t", object = "chat.completion.chunk", created = 1, model = "gpt-4o-2024-08-06",
                 choices = {{index = 0, delta = delta, finish_reason = finish or cjson.null}}}
      for k, v in pairs(extra or {}) do c[k] = v end
      return {nil, c}
    end
    local tool_stream = AH.sse{
      chunk({role = "assistant", content = cjson.null, tool_calls = {{index = 0, id = "call_DdmO9pD3xa9XTPNJ32zg2hcA",
        type = "function", ["function"] = {name = "get_weather", arguments = ""}}}}),
      chunk({tool_calls = {{index = 0, ["function"] = {arguments = '{"lo'}}}}),
      chunk({tool_calls = {{index = 0, ["function"] = {arguments = 'cation":"Paris, FR",'}}}}),
      chunk({tool_calls = {{index = 0, ["function"] = {arguments = '"unit":"celsius"}'}}}}),
      chunk({}, "tool_calls"),
      {nil, '{"id":"chatcmpl-t","object":"chat.completion.chunk","created":1,"model":"gpt-4o-2024-08-06",'
        .. '"choices":[],"usage":{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99,'
        .. '"prompt_tokens_details":{"cached_tokens":0}}}'},
      {nil, "[DONE]"},
    }

    it("assembles streamed tool call fragments", function()
      local r, pieces = stream_all_ways(openai, tool_stream)
      assert.are.same({}, pieces)
      expect_weather_call(r, "call_DdmO9pD3xa9XTPNJ32zg2hcA")
      expect_usage(r, 82, 17, 0, 0)
    end)

    it("raises an error object in a data line, keeping the text so far", function()
      local full = AH.fixture("openai", "chat_stream.sse")
      local head = full:match('^(.-)data: {[^\n]*" streaming"')
      local body = head .. 'data: {"error":{"message":"The server had an error while processing your request.",'
        .. '"type":"server_error","param":null,"code":null}}\n\n'
      for _, size in ipairs({#body, 1, 9}) do
        local r, _, p, e = AH.run_stream(openai, body, size)
        assert.is_nil(r)
        assert.are.equal("server_error", e.type)
        assert.is_true(e.retryable)
        assert.are.equal("openai", e.provider)
        assert.are.equal("Hello from OpenAI", p.text)
      end
    end)

    it("raises stream_truncated when the body ends before [DONE] and any finish_reason", function()
      local full = AH.fixture("openai", "chat_stream.sse")
      local cut = full:sub(1, full:find('" streaming"', 1, true) - 30)
      local r, _, p, e = AH.run_stream(openai, cut, 1)
      assert.is_nil(r)
      assert.are.equal("stream_truncated", e.type)
      assert.are.equal("Hello from OpenAI", p.text)
    end)

    it("accepts [DONE] without the final blank line", function()
      local body = AH.fixture("openai", "chat_stream.sse"):gsub("%s+$", "")
      local r = stream_all_ways(openai, body)
      assert.are.equal("Hello from OpenAI streaming!", r.text)
    end)
  end)
end)

--------------------------------------------------------------------------
describe("ollama adapter", function()
  it("declares its name, environment and that it needs no key", function()
    assert.are.equal("ollama", ollama.name)
    assert.is_nil(ollama.env.key)
    assert.are.equal("OLLAMA_HOST", ollama.env.base)
    assert.are.equal("http://127.0.0.1:11434", ollama.env.default_base)
    assert.is_false(ollama.needs_key)
  end)

  describe("build", function()
    it("posts to {base}/api/chat, accepting OLLAMA_HOST without scheme or port", function()
      local req = {model = "llama3.2", messages = msgs("x")}
      assert.are.equal("http://127.0.0.1:11434/api/chat", ollama.build(req, {}).url)
      for base, url in pairs({
        ["http://gpu-box:11434"] = "http://gpu-box:11434/api/chat",
        ["http://gpu-box:11434/"] = "http://gpu-box:11434/api/chat",
        ["0.0.0.0:11434"] = "http://0.0.0.0:11434/api/chat",
        ["localhost"] = "http://localhost:11434/api/chat",
        ["https://ollama.example.com"] = "https://ollama.example.com/api/chat",
        ["http://proxy/ollama"] = "http://proxy/ollama/api/chat",
      }) do
        assert.are.equal(url, ollama.build(req, {base = base}).url, base)
      end
      local r = ollama.build(req, {})
      assert.is_nil(r.headers.authorization)
      assert.are.equal("application/json", r.headers["content-type"])
    end)

    it("always says stream explicitly (Ollama streams by default)", function()
      local req = {model = "llama3.2", messages = msgs("x")}
      local b = cjson.decode(ollama.build(req, {}).body)
      assert.is_false(b.stream)
      assert.is_true(cjson.decode(ollama.build(req, {stream = true}).body).stream)
    end)

    it("puts system first and temperature, max_tokens and stop in options", function()
      local b = AH.json(ollama.build({model = "llama3.2", system = "be brief", temperature = 0.5, max_tokens = 64,
                                      stop = "###", messages = msgs("hi"), extra = {keep_alive = "10m",
                                      options = {num_ctx = 8192}}}, {}).body)
      assert.are.equal("llama3.2", b.model)
      assert.are.same({{role = "system", content = "be brief"}, {role = "user", content = "hi"}}, b.messages)
      assert.are.same({temperature = 0.5, num_predict = 64, stop = {"###"}, num_ctx = 8192}, b.options)
      assert.are.equal("10m", b.keep_alive)
      assert.is_nil(AH.json(ollama.build({model = "m", messages = msgs("x")}, {}).body).options)
    end)

    it("converts tools and the tool loop (arguments as an object, results with tool_name)", function()
      local b = AH.json(ollama.build(tool_loop_request(PARIS_CALL), {}).body)
      assert.are.same({{type = "function", ["function"] = {name = "get_weather", description = "Current weather for a place",
                                                          parameters = WEATHER_TOOL.parameters}}}, b.tools)
      assert.are.same({
        {role = "system", content = "use tools"},
        {role = "user", content = "Weather in Paris?"},
        {role = "assistant", content = "Let me check.", tool_calls = {{["function"] = {name = "get_weather",
                                                                                     arguments = WEATHER_ARGS}}}},
        {role = "tool", content = "18C, sunny", tool_name = "get_weather"},
        {role = "user", content = "And tomorrow?"},
      }, b.messages)
    end)
  end)

  describe("parse", function()
    it("reads chat.json: counts, timings in ms, cost stated as $0", function()
      local r = ollama.parse(http(200, AH.fixture("ollama", "chat.json")))
      assert.are.equal("Llamas are members of the camelid family.", r.text)
      assert.are.equal("llama3.2", r.model)
      assert.are.equal("stop", r.finish_reason)
      expect_usage(r, 47, 131, 0, 0)
      assert.are.equal(0, r.cost_usd)
      assert.are.same({total_ms = 5191.566416, load_ms = 2.154458, prompt_eval_ms = 383.809, eval_ms = 4799.921},
                      r.timings)
    end)

    it("reads tool_calls.json: finish_reason tool_calls and an id for the loop", function()
      local r = ollama.parse(http(200, AH.fixture("ollama", "tool_calls.json")))
      assert.are.equal("", r.text)
      expect_weather_call(r)
      expect_usage(r, 122, 33, 0, 0)
    end)

    it("gives usage = nil when both counts are missing, and leaves out only the one that is", function()
      assert.is_nil(ollama.parse(http(200, AH.fixture("ollama", "chat_no_usage.json"))).usage)
      assert.is_nil(ollama.parse(http(200, AH.fixture("ollama", "tool_calls_no_usage.json"))).usage)
      local body = AH.json(AH.fixture("ollama", "chat.json"))
      body.prompt_eval_count = nil -- the prompt came from Ollama's cache
      local r = ollama.parse(http(200, cjson.encode(body)))
      assert.are.same({output_tokens = 131, cache_read_tokens = 0, cache_write_tokens = 0}, r.usage)
      assert.are.equal(0, r.cost_usd)
      body = AH.json(AH.fixture("ollama", "chat.json"))
      body.eval_count = nil
      assert.are.same({input_tokens = 47, cache_read_tokens = 0, cache_write_tokens = 0},
                      ollama.parse(http(200, cjson.encode(body))).usage)
      assert.are.equal("length", ollama.parse(http(200, AH.fixture("ollama", "chat.json"):gsub('"stop"', '"length"'))).finish_reason)
    end)

    local cases = {
      {"error.json", 503, "overloaded_error", true, "server busy"},
      {"error_authentication.json", 401, "authentication_error", false, "unauthorized"},
      {"error_invalid_request.json", 400, "invalid_request_error", false, "model is required"},
    }
    for _, c in ipairs(cases) do
      it("raises " .. c[3] .. " for " .. c[1], function()
        local e = AH.catch(ollama.parse, http(c[2], AH.fixture("ollama", c[1]), {["retry-after"] = "3"}))
        assert.are.equal(c[3], e.type)
        assert.are.equal(c[2], e.status)
        assert.are.equal(c[4], e.retryable)
        assert.are.equal("ollama", e.provider)
        assert.is_truthy(e.message:find(c[5], 1, true), e.message)
        assert.are.equal(3000, e.retry_after_ms)
      end)
    end

    it("raises not_found_error for an unknown model", function()
      local e = AH.catch(ollama.parse, http(404, '{"error":"model \\"nope\\" not found, try pulling it first"}'))
      assert.are.equal("not_found_error", e.type)
      assert.is_false(e.retryable)
    end)

    it("raises malformed_response for a 200 that is not the expected JSON", function()
      for _, body in ipairs({'{"model": "llama3.2", "message": {', "", '{"model":"x"}'}) do
        local e = AH.catch(ollama.parse, http(200, body))
        assert.are.equal("malformed_response", e.type)
        assert.is_false(e.retryable)
      end
    end)

    it("reads an NDJSON body (a request that forgot stream = false)", function()
      local r = ollama.parse(http(200, AH.fixture("ollama", "chat_stream.ndjson")))
      assert.are.equal("Hello from Ollama streaming!", r.text)
      expect_usage(r, 31, 17, 0, 0)
    end)
  end)

  describe("stream", function()
    it("parses chat_stream.ndjson identically however it is split, usage from the done object", function()
      local r, pieces = stream_all_ways(ollama, AH.fixture("ollama", "chat_stream.ndjson"))
      assert.are.same({"Hello", " from", " Ollama", " streaming", "!"}, pieces)
      assert.are.equal("Hello from Ollama streaming!", r.text)
      assert.are.equal("llama3.2", r.model)
      assert.are.equal("stop", r.finish_reason)
      expect_usage(r, 31, 17, 0, 0)
      assert.are.equal(0, r.cost_usd)
      assert.are.same({total_ms = 1023.775208, load_ms = 18.584625, prompt_eval_ms = 112.44, eval_ms = 872.113}, r.timings)
    end)

    it("gives usage = nil when the done object has no counts", function()
      local r = stream_all_ways(ollama, AH.fixture("ollama", "chat_stream_no_usage.ndjson"))
      assert.are.equal("Hello from Ollama streaming!", r.text)
      assert.is_nil(r.usage)
      assert.are.equal(0, r.cost_usd)
    end)

    local tool_stream = table.concat({
      '{"model":"qwen3","created_at":"2025-05-27T22:54:57.641643Z","message":{"role":"assistant","content":"",'
        .. '"tool_calls":[{"function":{"name":"get_weather","arguments":{"location":"Paris, FR","unit":"celsius"}}}]},"done":false}',
      '{"model":"qwen3","created_at":"2025-05-27T22:54:58.100509Z","message":{"role":"assistant","content":""},'
        .. '"done":true,"done_reason":"stop","total_duration":1000000,"load_duration":0,"prompt_eval_count":180,'
        .. '"prompt_eval_duration":100,"eval_count":22,"eval_duration":900}',
    }, "\n") .. "\n"

    it("collects streamed tool calls", function()
      local r = stream_all_ways(ollama, tool_stream)
      expect_weather_call(r)
      expect_usage(r, 180, 22, 0, 0)
    end)

    it("raises an error line, keeping the text so far", function()
      local body = AH.fixture("ollama", "chat_stream.ndjson"):match("^(.-\n.-\n)")
        .. '{"error":"an error was encountered while running the model: unexpected EOF"}\n'
      for _, size in ipairs({#body, 1, 6}) do
        local r, _, p, e = AH.run_stream(ollama, body, size)
        assert.is_nil(r)
        assert.are.equal("server_error", e.type)
        assert.is_true(e.retryable)
        assert.are.equal("ollama", e.provider)
        assert.is_truthy(e.message:find("unexpected EOF", 1, true))
        assert.are.equal("Hello from", p.text)
      end
    end)

    it("raises stream_truncated when the body ends before done, even mid-line", function()
      local full = AH.fixture("ollama", "chat_stream.ndjson")
      for _, cut in ipairs({full:match("^(.-\n.-\n)"), full:sub(1, #full - 40)}) do
        local r, _, p, e = AH.run_stream(ollama, cut, 1)
        assert.is_nil(r)
        assert.are.equal("stream_truncated", e.type)
        assert.is_truthy(p.text:find("^Hello from"))
      end
    end)
  end)
end)

--------------------------------------------------------------------------
describe("all three adapters", function()
  local ALL = {anthropic = anthropic, openai = openai, ollama = ollama}

  it("return tool calls in one shape, whole and streamed", function()
    for _, r in ipairs({
      anthropic.parse(http(200, AH.fixture("anthropic", "tool_use.json"))),
      openai.parse(http(200, AH.fixture("openai", "tool_calls.json"))),
      ollama.parse(http(200, AH.fixture("ollama", "tool_calls.json"))),
    }) do
      expect_weather_call(r)
    end
  end)

  it("round-trip a tool call from one response into the next request", function()
    local responses = {
      anthropic = anthropic.parse(http(200, AH.fixture("anthropic", "tool_use.json"))),
      openai = openai.parse(http(200, AH.fixture("openai", "tool_calls.json"))),
      ollama = ollama.parse(http(200, AH.fixture("ollama", "tool_calls.json"))),
    }
    for name, a in pairs(ALL) do
      local resp = responses[name]
      local call = resp.tool_calls[1]
      local req = {model = "m", tools = {WEATHER_TOOL}, messages = {
        {role = "user", content = "Weather in Paris?"},
        {role = "assistant", content = resp.text, tool_calls = resp.tool_calls},
        {role = "tool", tool_call_id = call.id, content = "18C"},
      }}
      local b = AH.json(a.build(req, {key = KEY}).body)
      local text = cjson.encode(b)
      assert.is_truthy(text:find("Paris, FR", 1, true), name)
      if name == "anthropic" then
        assert.are.same(WEATHER_ARGS, b.messages[2].content[2].input)
        assert.are.equal(call.id, b.messages[3].content[1].tool_use_id)
      elseif name == "openai" then
        assert.are.same(WEATHER_ARGS, cjson.decode(b.messages[2].tool_calls[1]["function"].arguments))
        assert.are.equal(call.id, b.messages[3].tool_call_id)
      else
        assert.are.same(WEATHER_ARGS, b.messages[2].tool_calls[1]["function"].arguments)
        assert.are.equal("get_weather", b.messages[3].tool_name)
      end
    end
  end)

  it("keep tool arguments that are empty arrays or null exactly as the model sent them", function()
    local call = {id = "c", name = "f", arguments_json = '{"tags":[],"note":null}', arguments = {tags = {}}}
    for name, a in pairs(ALL) do
      local body = a.build({model = "m", messages = {{role = "user", content = "x"},
        {role = "assistant", tool_calls = {call}}, {role = "tool", tool_call_id = "c", content = "ok"}}}, {key = KEY}).body
      local found = body:find('{"tags":[],"note":null}', 1, true) or body:find('{\\"tags\\":[],\\"note\\":null}', 1, true)
      assert.is_truthy(found, name .. ": " .. body)
    end
  end)

  it("put the API key in the auth header and nowhere else", function()
    local req = {model = "m", system = "s", messages = msgs("hi"), tools = {WEATHER_TOOL}}
    for name, a in pairs(ALL) do
      for _, stream in ipairs({false, true}) do
        local r = a.build(req, {key = KEY, stream = stream, base = "http://127.0.0.1:1"})
        local auth = name == "anthropic" and "x-api-key" or "authorization"
        assert.is_truthy(r.headers[auth]:find(KEY, 1, true), name)
        assert.is_falsy(r.url:find(KEY, 1, true))
        assert.is_falsy(r.body:find(KEY, 1, true))
        for k, v in pairs(r.headers) do
          if k ~= auth then assert.is_falsy(tostring(v):find(KEY, 1, true), name .. " header " .. k) end
        end
      end
    end
  end)

  -- llm.call passes every failed attempt's error through S.redact_error
  -- with the call's credentials (S.secrets); adapters stay pure parsers
  it("raise errors that S.redact_error strips of a key the server echoed", function()
    local echo = cjson.encode({error = {type = "authentication_error " .. KEY, message = "bad key " .. KEY,
                                        code = KEY}})
    local echo_ollama = cjson.encode({error = "bad key " .. KEY})
    local other = "plainkey-without-prefix-123"
    local function clean(e, secrets)
      assert.is_true(S.is_error(e))
      return S.redact_error(e, secrets)
    end
    for name, a in pairs(ALL) do
      local body = name == "ollama" and echo_ollama or echo
      for _, status in ipairs({401, 200}) do
        -- with the key known, and without (key-shaped text is redacted)
        for _, secrets in ipairs({S.secrets(KEY), {}}) do
          local e = AH.catch(a.parse, http(status, body))
          assert.is_truthy(AH.contains(e, KEY), name .. ": the echo is not in the error, the test proves nothing")
          assert.is_falsy(AH.contains(clean(e, secrets), KEY), name .. " " .. status)
        end
      end
      local e = AH.catch(a.parse, http(401, (body:gsub(KEY, other))))
      assert.is_falsy(AH.contains(clean(e, S.secrets(other)), other), name)
      -- a malformed body that contains the key
      local m = AH.catch(a.parse, http(200, "garbage " .. KEY))
      assert.are.equal("malformed_response", m.type)
      assert.is_falsy(AH.contains(clean(m, S.secrets(KEY)), KEY), name)
      -- stream errors
      local stream_body = ({
        anthropic = 'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"' .. KEY .. '"}}\n\n',
        openai = 'data: {"error":{"type":"server_error","message":"' .. KEY .. '"}}\n\n',
        ollama = '{"error":"' .. KEY .. '"}\n',
      })[name]
      local _, _, _, se = AH.run_stream(a, stream_body, 3, 1)
      assert.is_table(se, name)
      assert.is_falsy(AH.contains(clean(se, S.secrets(KEY)), KEY), name)
      -- and the errors build raises never hold it
      local be = AH.catch(a.build, {model = "m", messages = msgs("x"), tools = {{}}}, {key = KEY})
      assert.are.equal("invalid_request_error", be.type)
      assert.is_falsy(AH.contains(be, KEY), name)
    end
  end)

  it("keep every error field the contract names", function()
    for name, a in pairs(ALL) do
      local e = AH.catch(a.parse, http(429, '{"error":{"type":"rate_limit_error","message":"slow down"}}',
                                       {["retry-after-ms"] = "120"}))
      assert.are.equal(name, e.provider)
      assert.are.equal(429, e.status)
      assert.is_true(e.retryable)
      assert.are.equal(120, e.retry_after_ms)
      assert.is_string(e.type)
      assert.is_string(e.message)
    end
  end)

  it("do not change the request they are given", function()
    for _, a in pairs(ALL) do
      local req = tool_loop_request(PARIS_CALL)
      local before = cjson.encode(req.messages) .. cjson.encode(req.tools)
      a.build(req, {key = KEY})
      assert.are.equal(before, cjson.encode(req.messages) .. cjson.encode(req.tools))
    end
  end)
end)
