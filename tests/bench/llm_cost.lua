-- llm.call against tests/fake_llm on loopback (OpenAI wire format).
-- Run by tests/bench/run.sh with OPENAI_BASE_URL pointing at the server.
local base = assert(os.getenv("OPENAI_BASE_URL"), "OPENAI_BASE_URL must point at tests/fake_llm")
local cjson = require "cjson"
local n = tonumber(arg[1]) or 2000

local req = {model = "gpt-4o-mini", api_key = "sk-bench",
             messages = {{role = "user", content = "How fast is this?"}}}

local function raw_call()
  local h = moonspan.http.start{url = base .. "/v1/chat/completions", method = "POST",
    headers = {["content-type"] = "application/json", authorization = "Bearer sk-bench"},
    body = cjson.encode{model = req.model, messages = req.messages}}
  moonspan.http.wait(h)
  assert(h:result().status == 200)
end

local function stats()
  local h = moonspan.http.start{url = base .. "/stats"}
  moonspan.http.wait(h)
  return cjson.decode(h:result().body)
end

local function timed(fn, count)
  local t0 = moonspan.now_ms()
  for _ = 1, count do fn() end
  return (moonspan.now_ms() - t0) / count
end

-- warm both paths (connection, code), then measure
timed(raw_call, 50)
timed(function() llm.call(req) end, 50)
local before = stats()
local raw = timed(raw_call, n)
local full = trace("bench", function() return timed(function() llm.call(req) end, n) end)
local after = stats()
print(string.format("llm.call round trip on loopback: %.1f us per call; raw HTTP of the same request: %.1f us",
  full * 1000, raw * 1000))
print(string.format("host overhead per llm.call (round trip minus raw HTTP): %.1f us", (full - raw) * 1000))
print(string.format("calls per second, sequential: %.0f; new TCP connections for %d calls: %d",
  1000 / full, 2 * n, after.connections - before.connections))

-- 100 calls to a server that answers after 50 ms, at concurrency 1, 10, 50
local slow = {}
for i = 1, 100 do
  slow[i] = {model = "gpt-4o-mini", api_key = "sk-bench", headers = {["x-fake-fault"] = "delay=50"},
             messages = {{role = "user", content = "call " .. i}}}
end
local single = timed(function() llm.call(slow[1]) end, 5)
print(string.format("one call to the 50 ms server: %.1f ms", single))
for _, c in ipairs{1, 10, 50} do
  local t0 = moonspan.now_ms()
  local resps, errs = trace("map", function() return llm.map(slow, {concurrency = c}) end)
  assert(not errs and #resps == 100, "llm.map failed")
  local ms = moonspan.now_ms() - t0
  print(string.format("llm.map, 100 calls, concurrency %2d: %7.0f ms  (%.1f x one call)", c, ms, ms / single))
end
