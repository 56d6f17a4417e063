-- The offline provider: deterministic answers, simulated latency and
-- failures, usage reported the way real providers report it.
--
-- llm.call{model = "mock", messages = ..., mock = {
--   reply = "text" | function(request) -> text or {text =, tool_calls =},
--                                                 -- default: echo of the last user message
--   tool_calls = {{name = "calc", arguments = {expr = "2+2"}}}, -- ask for tool calls
--   latency_ms = 120,                             -- simulated time per attempt
--   fail = {status = 429, times = 2, message = "..."}, -- first `times` attempts fail
--   usage = false,                                -- omit usage (tokens get estimated)
-- }}

local cjson = require "cjson"
local S = require "moonspan.wire"
local sched = require "moonspan.sched"

local mock = {}

local function last_user_message(req)
  for i = #req.messages, 1, -1 do
    local m = req.messages[i]
    if m.role == "user" and type(m.content) == "string" then return m.content end
  end
  return ""
end

local function count_tokens(text)
  -- whitespace-separated words plus punctuation runs: deterministic, and
  -- close to what BPE tokenizers give for English prose
  local n = 0
  for _ in text:gmatch("[%w']+") do n = n + 1 end
  for _ in text:gmatch("[^%w%s']+") do n = n + 1 end
  return n
end

function mock.send(req, attempt)
  local opts = req.mock or {}
  if type(opts) ~= "table" then
    S.raise_invalid("llm.call: mock options must be a table, e.g. mock = {reply = \"hi\", latency_ms = 50}")
  end
  if opts.latency_ms then sched.sleep(opts.latency_ms) end
  local fail = opts.fail
  if fail and attempt <= (fail.times or 1) then
    local status = fail.status or 500
    error(S.error("mock", {status = status, provider_type = fail.type,
                           message = fail.message or ("simulated HTTP " .. status),
                           retry_after_ms = fail.retry_after_ms}), 0)
  end
  local reply = opts.reply
  if type(reply) == "function" then reply = reply(req) end
  local tool_calls = opts.tool_calls
  if type(reply) == "table" then
    tool_calls = reply.tool_calls
    reply = reply.text or ""
  end
  reply = reply or last_user_message(req)
  local resp = {text = tostring(reply), model = req.model, finish_reason = "stop"}
  if tool_calls and #tool_calls > 0 then
    resp.tool_calls = {}
    for i, c in ipairs(tool_calls) do
      local args = c.arguments or {}
      resp.tool_calls[i] = {id = c.id or string.format("call_mock_%d", i), name = c.name,
                            arguments = args, arguments_json = cjson.encode(args)}
    end
    resp.finish_reason = "tool_calls"
  end
  if opts.usage ~= false then
    local input = count_tokens(req.system or "")
    for _, m in ipairs(req.messages) do
      input = input + 4 + count_tokens(type(m.content) == "string" and m.content or "")
    end
    resp.usage = {input_tokens = input, output_tokens = count_tokens(resp.text),
                  cache_read_tokens = 0, cache_write_tokens = 0, estimated = false}
  end
  return resp
end

return mock
