-- The time spent waiting between attempts, stored with the retries.
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
