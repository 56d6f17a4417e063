-- What an llm.call error is, whichever provider raised it: one type
-- vocabulary (by HTTP status first, the provider's own names kept aside),
-- one status table and one backoff formula behind every retry, a span for
-- every call (also one refused before it was sent), and the time spent
-- waiting between attempts.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local AH = dofile(here .. "adapter_helpers.lua")
local fake = dofile(here .. "fake_server.lua").start(H)
local S = require "moonspan.wire"
local PROVIDERS = {
  anthropic = require "moonspan.providers.anthropic",
  openai = require "moonspan.providers.openai",
  ollama = require "moonspan.providers.ollama",
}

teardown(function() fake.stop() end)

local function msgs(text) return {{role = "user", content = text or "hi"}} end

local function http(status, body, headers)
  return {status = status, headers = headers or {}, body = body}
end

-- the text of every Lua file compiled into the binary, by path
local function library_sources()
  local out = {}
  local p = assert(io.popen("cd " .. H.q(H.root) .. " && ls scripts/*.lua scripts/providers/*.lua"))
  for path in p:lines() do out[path] = H.read(H.root .. "/" .. path) end
  p:close()
  return out
end

describe("one retry policy", function()
  it("has one HTTP status table and one backoff formula in the whole Lua library", function()
    local tables, formulas = {}, {}
    for path, src in pairs(library_sources()) do
      if src:find("%[429%]%s*=") then tables[#tables + 1] = path end
      if src:find("2%s*%^%s*%(attempt") then formulas[#formulas + 1] = path end
    end
    assert.are.same({"scripts/wire.lua"}, tables)
    assert.are.same({"scripts/wire.lua"}, formulas)
  end)

  it("waits with full jitter, capped, doubling per attempt", function()
    for attempt = 1, 6 do
      local top = math.min(1000, 100 * 2 ^ (attempt - 1))
      local max = 0
      for _ = 1, 200 do
        local w = S.backoff_ms(100, 1000, attempt)
        assert.is_true(w >= 0 and w <= top, "attempt " .. attempt .. ": " .. w)
        max = math.max(max, w)
      end
      assert.is_true(max > top / 2, "attempt " .. attempt .. " never waited near its cap " .. top)
    end
  end)

  it("retries exactly the types it marks retryable, for every status", function()
    for status = 300, 599 do
      local t = S.status_type(status)
      assert.is_not_nil(S.TYPES[t], status .. " maps to " .. tostring(t) .. ", outside the vocabulary")
      local want = status == 408 or status == 409 or status == 429 or status >= 500
      assert.are.equal(want, S.retryable_status(status), "status " .. status)
    end
    assert.is_nil(S.status_type(200))
  end)
end)

describe("one error vocabulary", function()
  local STATUSES = {400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, 529}
  -- what each provider would call it, which must not decide our type
  local theirs = '{"error":{"type":"tokens","code":"rate_limit_exceeded","message":"m"}}'

  it("types an error by its HTTP status, the same for every provider and the mock", function()
    for _, status in ipairs(STATUSES) do
      local want = S.status_type(status)
      for name, a in pairs(PROVIDERS) do
        local e = AH.catch(a.parse, http(status, theirs))
        assert.are.equal(want, e.type, name .. " " .. status)
        assert.are.equal(S.TYPES[want], e.retryable, name .. " " .. status)
      end
      local ok, e = pcall(llm.call, {model = "mock", messages = msgs(), retries = 0,
                                     mock = {fail = {status = status}}})
      assert.is_false(ok)
      assert.are.equal(want, e.type, "mock " .. status)
      assert.are.equal(status, e.status)
    end
  end)

  it("keeps the provider's own type and code: an OpenAI 429 is a rate_limit_error", function()
    local ok, err = pcall(llm.call, {model = "gpt-4o-2024-08-06", base_url = fake.url, api_key = "k",
                                     messages = msgs(), retries = 0, headers = {["x-fake-fault"] = "429"}})
    assert.is_false(ok)
    assert.are.equal("rate_limit_error", err.type)
    assert.are.equal("tokens", err.provider_type)
    assert.are.equal("rate_limit_exceeded", err.code)
    assert.are.equal(429, err.status)
    assert.is_true(err.retryable)
    assert.is_truthy(tostring(err):find("rate_limit_error (HTTP 429)", 1, true), tostring(err))
  end)

  it("types stream error events, which have no status, by the provider's name for them", function()
    local cases = {
      {"anthropic", 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"x"}}\n\n',
       "overloaded_error", "overloaded_error"},
      {"anthropic", 'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"x"}}\n\n',
       "server_error", "api_error"},
      {"openai", 'data: {"error":{"type":"tokens","code":"rate_limit_exceeded","message":"x"}}\n\n',
       "rate_limit_error", "tokens"},
      {"openai", 'data: {"error":{"type":"invalid_request_error","message":"x"}}\n\n',
       "invalid_request_error", "invalid_request_error"},
      {"ollama", '{"error":"model runner crashed"}\n', "server_error", nil},
    }
    for _, c in ipairs(cases) do
      local _, _, _, e = AH.run_stream(PROVIDERS[c[1]], c[2], 5)
      assert.is_table(e, c[1])
      assert.are.equal(c[3], e.type, c[1] .. " " .. c[2])
      assert.are.equal(c[4], e.provider_type, c[1])
      assert.are.equal(S.TYPES[c[3]], e.retryable, c[1])
      assert.is_nil(e.status)
    end
  end)

  it("passes an error that is not its own unchanged: the same value, untouched, not retried", function()
    local calls = 0
    for _, mine in ipairs({{type = "interrupted", signal = "SIGINT"}, "plain text"}) do
      local ok, e = pcall(llm.call, {model = "mock", messages = msgs(), retries = 3, mock = {reply = function()
        calls = calls + 1
        error(mine, 0)
      end}})
      assert.is_false(ok)
      assert.is_true(rawequal(mine, e))
      if type(e) == "table" then
        assert.are.same({type = "interrupted", signal = "SIGINT"}, e)
        assert.is_nil(getmetatable(e))
      end
    end
    assert.are.equal(2, calls)
  end)

  it("types transport failures and broken answers too", function()
    local function fails(fault, extra)
      local req = {model = "gpt-4o-2024-08-06", base_url = fake.url, api_key = "k", messages = msgs(),
                   retries = 0, headers = {["x-fake-fault"] = fault}}
      for k, v in pairs(extra or {}) do req[k] = v end
      local ok, e = pcall(llm.call, req)
      assert.is_false(ok, fault)
      return e
    end
    assert.are.equal("timeout_error", fails("hang", {timeout_ms = 100}).type)
    assert.are.equal("connection_error", fails("reset").type)
    assert.are.equal("malformed_response", fails("malformed").type)
    assert.are.equal("stream_truncated", fails("truncate", {stream = true}).type)
  end)

  it("is the table the README documents", function()
    local readme = H.read(H.root .. "/README.md")
    local section = readme:match("\n#### Errors\n(.-)\n####? ")
    assert.is_string(section, "README has no '#### Errors' section")
    local listed = {}
    for name, retry in section:gmatch("\n| `([%w_]+)` |[^\n]*| (%a+) |") do
      if retry == "yes" or retry == "no" then listed[name] = retry == "yes" end
    end
    assert.are.same(S.TYPES, listed)
  end)
end)

describe("a call refused before it is sent", function()
  local run = H.once(function()
    return H.run_script([[
      local function bad_args() local r = llm.call{model = "mock"}; return r end -- line 1
      trace("refused", function()
        local ok, e = pcall(bad_args)
        print("pcall", tostring(e))
        local resps, errs = llm.map({
          {model = "claude-sonnet-4-20250514", messages = {{role = "user", content = "hi"}}},
          {model = "no-such-family", messages = {{role = "user", content = "hi"}}},
          "not a table",
          {model = "mock", messages = {{role = "user", content = "fine"}}},
          {model = {}, messages = {{role = "user", content = "hi"}}},
          {model = "gpt-4o", provider = "nope", messages = {{role = "user", content = "hi"}}},
        }, {concurrency = 2})
        for i = 1, 6 do
          local e = errs[i]
          print(i, e and e.type or "ok", e and tostring(e) or resps[i].text)
        end
      end)
      llm.call{model = "gpt-4o", messages = {{role = "user", content = "hi"}}} -- line 18: no key
    ]], {env = fake.env{ANTHROPIC_API_KEY = false, OPENAI_API_KEY = false, MOONSPAN_PROVIDER = false}})
  end)

  it("is raised as before: to the caller, pointing at the caller's line", function()
    local r = run()
    assert.are.equal(1, r.code, r.err)
    assert.is_truthy(r.out:find("pcall\t[^\n]*script%.lua:1: llm%.call: messages must be"), r.out)
    assert.is_truthy(r.err:find("script.lua:18: llm.call: no API key for provider 'openai'", 1, true), r.err)
    assert.is_truthy(r.out:find("1\tconfiguration_error\tllm.call: no API key for provider 'anthropic'", 1, true),
                     r.out)
    assert.is_truthy(r.out:find("2\tconfiguration_error\tllm.call: cannot tell the provider", 1, true), r.out)
    assert.is_truthy(r.out:find("3\tinvalid_request_error\tllm.call: expected a table", 1, true), r.out)
    assert.is_truthy(r.out:find("4\tok\tfine", 1, true), r.out)
    assert.is_truthy(r.out:find("5\tinvalid_request_error\tllm.call: model is required", 1, true), r.out)
    assert.is_truthy(r.out:find("6\tconfiguration_error\tllm.call: unknown provider 'nope'", 1, true), r.out)
  end)

  it("is a failed span named after the call, with its typed error, counted once", function()
    local r = run()
    local rows = H.query(r.db, "SELECT s.name, s.status, s.error_own, s.error_type, s.error_message "
                               .. "FROM spans s JOIN traces t ON s.trace_row = t.id WHERE t.name = 'refused' "
                               .. "AND s.name LIKE 'chat%' ORDER BY s.rowid")
    local got = {}
    for _, s in ipairs(rows) do
      got[#got + 1] = table.concat({s.name, s.status, tostring(math.tointeger(s.error_own)),
                                    tostring(s.error_type)}, " | ")
    end
    table.sort(got)
    local want = {
      "chat | error | 1 | invalid_request_error",
      "chat | error | 1 | invalid_request_error",
      "chat claude-sonnet-4-20250514 | error | 1 | configuration_error",
      "chat gpt-4o | error | 1 | configuration_error",
      "chat mock | error | 1 | invalid_request_error",
      "chat mock | ok | 0 | nil",
      "chat no-such-family | error | 1 | configuration_error",
    }
    table.sort(want)
    assert.are.same(want, got)
    for _, s in ipairs(rows) do
      if s.error_message then
        assert.is_truthy(s.error_message:find("^llm%.call: "), s.error_message)
      end
    end
    assert.are.equal(6, H.trace_row(r.db, "refused").error_count)
  end)

  it("shows in the report's error count", function()
    local r = run()
    local rep = H.moonspan({"report", "--json", "--name", "refused"}, {db = r.db})
    assert.are.equal(0, rep.code, rep.err)
    local errors = H.json(rep.out).errors
    assert.are.equal(6, errors.count)
    local types = {}
    for _, e in ipairs(errors.top) do types[e.type] = true end
    assert.are.same({configuration_error = true, invalid_request_error = true}, types)
  end)
end)

describe("time spent waiting between attempts", function()
  local run = H.once(function()
    return H.run_ok([[
      trace("waits", function()
        llm.call{model = "mock", messages = {{role = "user", content = "x"}},
                 mock = {fail = {status = 429, times = 2, retry_after_ms = 60}}}
        llm.call{model = "gpt-4o-2024-08-06", provider = "openai", messages = {{role = "user", content = "x"}},
                 headers = {["x-fake-fault"] = "500", ["x-fake-fault-times"] = "1", ["x-fake-key"] = arg[1],
                            ["x-fake-retry-after-ms"] = "80"}}
        pcall(llm.call, {model = "mock", retries = 1, messages = {{role = "user", content = "x"}},
                         mock = {fail = {status = 503, times = 5, retry_after_ms = 70}}})
        span("wrapped", function()
          local n = 0
          retry{attempts = 3, backoff_ms = 40, max_backoff_ms = 40, function()
            n = n + 1
            if n < 3 then error("flaky") end
          end}
        end)
      end)
    ]], {args = {"kwait" .. math.random(1e9)}, env = fake.env()})
  end)

  local function spans()
    local rows = H.query(run().db, "SELECT s.name, s.retries, s.retry_succeeded, s.backoff_ns, s.duration_ns "
                                   .. "FROM spans s JOIN traces t ON s.trace_row = t.id "
                                   .. "WHERE t.name = 'waits' AND s.retries > 0 ORDER BY s.rowid")
    assert.are.equal(4, #rows)
    return rows
  end

  it("is stored with the retries of llm.call, whether they saved the call or not", function()
    local rows = spans()
    local mock_ok, http_ok, mock_failed = rows[1], rows[2], rows[3]
    assert.are.equal(2, mock_ok.retries)
    assert.is_true(mock_ok.backoff_ns >= 120e6 and mock_ok.backoff_ns < mock_ok.duration_ns, mock_ok.backoff_ns)
    assert.are.equal(1, http_ok.retries)
    assert.is_true(http_ok.backoff_ns >= 80e6 and http_ok.backoff_ns < http_ok.duration_ns, http_ok.backoff_ns)
    assert.are.equal(0, mock_failed.retry_succeeded)
    assert.is_true(mock_failed.backoff_ns >= 70e6 and mock_failed.backoff_ns < mock_failed.duration_ns,
                   mock_failed.backoff_ns)
  end)

  it("is stored with the retries of retry(), matching the waits of its events", function()
    local wrapped = spans()[4]
    assert.are.equal("wrapped", wrapped.name)
    local planned = 0
    for _, e in ipairs(H.events(run().db, "waits")) do
      if e.name == "retry" then planned = planned + H.json(e.attrs).wait_ms end
    end
    assert.is_true(wrapped.backoff_ns >= planned * 1e6 - 1e6, wrapped.backoff_ns .. " < " .. planned .. " ms")
    assert.is_true(wrapped.backoff_ns < wrapped.duration_ns)
  end)
end)
