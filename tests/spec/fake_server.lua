-- Starts tests/fake_llm for a spec file and stops it when the file is done.
--   local fake = dofile(dir .. "fake_server.lua").start(H)
--   fake.url, fake.stats(), fake.last(), fake.reset(), fake.stop()
-- The server reads its stdin: when this process ends for any reason the
-- pipe closes and the server exits, so no test leaves it running.
local cjson = require "cjson"

local M = {}

function M.start(H)
  local bin = H.bin:gsub("/moonspan$", "/fake_llm")
  local dir = H.tmpdir("fake")
  local portfile = dir .. "/port"
  local pipe = assert(io.popen("exec " .. H.q(bin) .. " --quiet --exit-on-stdin-eof --fixtures "
                               .. H.q(H.root .. "/tests/fixtures") .. " > " .. H.q(portfile), "w"))
  local port
  for _ = 1, 500 do
    local f = io.open(portfile)
    local text = f and f:read("a")
    if f then f:close() end
    port = text and text:match("port=(%d+)")
    if port then break end
    moonspan.sleep_ms(10)
  end
  assert(port, "fake_llm did not start (" .. bin .. ")")
  local fake = {url = "http://127.0.0.1:" .. port, port = tonumber(port)}

  local function get(path, method)
    local h = moonspan.http.start{url = fake.url .. path, method = method or "GET"}
    moonspan.http.wait(h)
    return cjson.decode(h:result().body)
  end
  function fake.stats() return get("/stats") end
  function fake.last() return get("/last") end
  function fake.reset() return get("/reset", "POST") end
  function fake.stop()
    if pipe then pipe:close() end
    pipe = nil
  end
  -- environment for a child `moonspan run` that should talk to this server
  function fake.env(extra)
    local env = {ANTHROPIC_BASE_URL = fake.url, OPENAI_BASE_URL = fake.url, OLLAMA_HOST = fake.url,
                 ANTHROPIC_API_KEY = "sk-ant-test-key", OPENAI_API_KEY = "sk-openai-test-key"}
    for k, v in pairs(extra or {}) do env[k] = v end
    return env
  end
  return fake
end

return M
