-- Ollama native chat adapter: POST {base}/api/chat (for Ollama's
-- OpenAI-compatible /v1 endpoint use the openai provider).
--
-- Ollama streams by default, so `stream` is always sent explicitly.
-- Usage: input = prompt_eval_count, output = eval_count, no cache tokens.
-- Ollama leaves prompt_eval_count out when the whole prompt came from its
-- cache; the missing count is nil and llm.call estimates it (and says so). The
-- *_duration fields (nanoseconds) become timings in milliseconds. Local
-- inference costs $0, stated as cost_usd = 0.
local S = require "moonspan.wire"

local A = {}
A.name = "ollama"
A.env = {key = nil, base = "OLLAMA_HOST", default_base = "http://127.0.0.1:11434"}
A.needs_key = false
-- Local inference: every call costs $0, so no budget ever stops one.
A.free = true

--------------------------------------------------------------------------
-- request
--------------------------------------------------------------------------

-- OLLAMA_HOST is often written without a scheme ("0.0.0.0:11434",
-- "localhost"): http is assumed, and port 11434 when none is given.
function A.base_url(base)
  base = tostring(base or A.env.default_base):gsub("^%s+", ""):gsub("[%s/]+$", "")
  if not base:match("^%a[%w+.-]*://") then
    local hostport, path = base:match("^([^/]*)(.*)$")
    if not hostport:match(":%d+$") and not hostport:match("^%[.*%]:%d+$") then
      hostport = hostport .. ":11434"
    end
    base = "http://" .. hostport .. path
  end
  return base
end

local function convert_messages(req)
  local out = {}
  if req.system ~= nil and req.system ~= "" then
    out[1] = {role = "system", content = req.system}
  end
  local names = {} -- tool call id -> tool name, for the tool results
  for i, m in ipairs(req.messages or {}) do
    if m.role == "tool" then
      local content = m.content
      if content == nil then content = "" end
      if type(content) ~= "string" and type(content) ~= "table" then content = tostring(content) end
      out[#out + 1] = {role = "tool", content = content,
                       tool_name = m.name or m.tool_name or names[m.tool_call_id or false]}
    elseif m.role == "assistant" and type(m.tool_calls) == "table" and #m.tool_calls > 0 then
      local calls = {}
      for j, c in ipairs(m.tool_calls) do
        if c.id then names[c.id] = c.name end
        calls[j] = {["function"] = {name = c.name, arguments = S.arguments_value(c)}}
      end
      out[#out + 1] = {role = "assistant", content = m.content or "", tool_calls = calls}
    else
      out[#out + 1] = {role = m.role, content = m.content, images = m.images}
    end
  end
  return out
end

local convert_tools = S.function_tools

function A.build(req, opts)
  opts = opts or {}
  local stream = opts.stream
  if stream == nil then stream = req.stream end
  local options = {temperature = req.temperature, num_predict = req.max_tokens, stop = S.stop_list(req.stop)}
  if next(options) == nil then options = nil end
  local body = {
    model = req.model,
    messages = convert_messages(req),
    stream = stream and true or false, -- explicit: Ollama streams by default
    options = options,
    tools = convert_tools(req.tools),
  }
  S.merge(body, req.extra)
  local headers = {}
  local key = S.key(opts) -- optional: for an authenticating proxy in front of Ollama
  if key then headers.authorization = "Bearer " .. key end
  return {
    url = A.base_url(opts.base) .. "/api/chat",
    method = "POST",
    headers = S.headers(opts, headers),
    body = S.encode(body),
  }
end

--------------------------------------------------------------------------
-- responses
--------------------------------------------------------------------------

-- nil for what is not a duration (negative, 1e999): absent, not nonsense
local function ms(ns)
  ns = S.val(ns)
  if type(ns) ~= "number" or not (ns >= 0 and ns < math.huge) then return nil end
  return ns / 1e6
end

local function timings_of(o)
  local t = {total_ms = ms(o.total_duration), load_ms = ms(o.load_duration),
             prompt_eval_ms = ms(o.prompt_eval_duration), eval_ms = ms(o.eval_duration)}
  if next(t) == nil then return nil end
  return t
end

-- A missing count is not a zero: it stays nil, for llm.call to estimate
-- that side alone (Ollama leaves prompt_eval_count out when the prompt
-- came from its cache, and still counts the output exactly).
local function usage_of(o)
  local input, output = S.count(o.prompt_eval_count), S.count(o.eval_count)
  if input == nil and output == nil then return nil end
  return {input_tokens = input, output_tokens = output, cache_read_tokens = 0, cache_write_tokens = 0}
end

local function error_of(body)
  if type(body) ~= "table" then return nil end
  local e = S.val(body.error)
  if type(e) == "string" then return {message = e} end
  if type(e) == "table" then return {type = S.val(e.type), message = S.val(e.message)} end
  return nil
end

local function add_calls(calls, list)
  list = S.val(list)
  if type(list) ~= "table" then return end
  for _, c in ipairs(list) do
    if type(c) == "table" then -- anything else is no call at all
      local f = S.tbl(c["function"]) or {}
      local args = S.val(f.arguments)
      local id = S.str(c.id) or ("call_" .. (#calls + 1)) -- Ollama gives no id: one for the tool loop
      if type(args) == "string" then
        calls[#calls + 1] = S.tool_call(id, f.name, args)
      else
        calls[#calls + 1] = S.tool_call(id, f.name, nil, args or {})
      end
    end
  end
end

local function finish_reason(o, calls)
  if #calls > 0 then return "tool_calls" end
  local r = S.str(o.done_reason)
  if r and r ~= "" then return r end
  return o.done == true and "stop" or nil
end

local function response(o, text, calls)
  return {
    text = text,
    model = S.str(o.model),
    finish_reason = finish_reason(o, calls),
    usage = usage_of(o),
    tool_calls = #calls > 0 and calls or nil,
    cost_usd = 0,
    timings = timings_of(o),
  }
end

function A.parse(res, opts)
  local body = S.decode(res.body)
  if not S.ok_status(res.status) then
    local e = error_of(body)
    if e == nil and type(res.body) == "string" and res.body:find("\n%s*{") then
      -- a streamed error: the last {"error": ...} line
      for l in res.body:gmatch("[^\n]+") do e = error_of(S.decode(l)) or e end
    end
    S.raise_http(A.name, res, e)
  end
  if body == nil and type(res.body) == "string" and res.body:find("}%s*\n%s*{") then
    -- NDJSON: the request was sent without stream = false
    local p = A.stream(nil, opts)
    p:feed(res.body)
    return p:finish()
  end
  if type(body) ~= "table" then S.raise_malformed(A.name, res, "response is not JSON") end
  local e = error_of(body)
  if e then
    error(S.error(A.name, {provider_type = e.type, message = e.message, status = tonumber(res.status)}), 0)
  end
  local msg = S.val(body.message)
  if type(msg) ~= "table" then S.raise_malformed(A.name, res, "response has no message") end
  local calls = {}
  add_calls(calls, msg.tool_calls)
  local text = S.val(msg.content)
  return response(body, type(text) == "string" and text or "", calls)
end

--------------------------------------------------------------------------
-- streaming
--------------------------------------------------------------------------

-- One JSON object a line; text in message.content, tool calls whole in
-- message.tool_calls, the last object has done = true with the counts and
-- durations. An {"error": "..."} line is an error of the call.
function A.stream(on_text, opts)
  local p = {done = false}
  local add_text = S.text_buffer(p)
  local calls = {}
  local final

  local function on_line(line)
    local o = S.decode(line)
    if type(o) ~= "table" then
      S.raise_malformed(A.name, {status = 200, body = line}, "stream line is not JSON")
    end
    local e = error_of(o)
    if e then
      local err = S.error(A.name, {provider_type = e.type, message = e.message})
      p.failed = err
      error(err, 0)
    end
    local model = S.str(o.model)
    if model then p.model = model end
    local msg = S.val(o.message)
    if type(msg) == "table" then
      local piece = S.val(msg.content)
      if type(piece) == "string" and piece ~= "" then
        add_text(piece)
        if on_text then on_text(piece) end
      end
      add_calls(calls, msg.tool_calls)
    end
    if o.done == true then
      p.done = true
      final = o
      p.usage = usage_of(o)
    end
  end

  local framer = S.ndjson(function(line)
    -- a truncated last line must not hide the truncation behind a parse error
    on_line(line)
  end)

  function p:feed(chunk)
    if self.failed then error(self.failed, 0) end
    framer:feed(chunk)
  end

  function p:finish()
    if self.failed then error(self.failed, 0) end
    local ok, err = pcall(framer.finish, framer)
    if not ok then
      if type(err) == "table" and err.type == "malformed_response" and not self.done then
        S.raise_truncated(A.name, "the final done object")
      end
      error(err, 0)
    end
    if not self.done then S.raise_truncated(A.name, "the final done object") end
    return response(final, self.text, calls)
  end

  return p
end

return A
