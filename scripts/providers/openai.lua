-- OpenAI Chat Completions adapter: POST {base}/v1/chat/completions.
-- Also speaks to the OpenAI-compatible servers (vLLM, llama.cpp server,
-- LM Studio, Ollama's /v1): OPENAI_BASE_URL may end in "/v1" or not, the
-- path gets "/v1" exactly once. With key = "" no Authorization header is
-- sent (local servers).
--
-- Usage: prompt_tokens includes cached tokens, so
--   input_tokens = prompt_tokens - prompt_tokens_details.cached_tokens,
--   cache_read_tokens = cached_tokens, cache_write_tokens = 0.
-- Streaming asks for stream_options.include_usage and reads the final
-- usage chunk (choices = []).
local S = require "moonspan.wire"

local A = {}
A.name = "openai"
A.env = {key = "OPENAI_API_KEY", base = "OPENAI_BASE_URL", default_base = "https://api.openai.com"}
A.needs_key = true

--------------------------------------------------------------------------
-- request
--------------------------------------------------------------------------

local function convert_messages(req)
  local out = {}
  if req.system ~= nil and req.system ~= "" then
    out[1] = {role = "system", content = req.system}
  end
  for i, m in ipairs(req.messages or {}) do
    if m.role == "tool" then
      if type(m.tool_call_id) ~= "string" then
        S.raise_invalid(string.format("llm.call: messages[%d] (role tool) needs tool_call_id", i))
      end
      local content = m.content
      if content == nil then content = "" end
      if type(content) ~= "string" and type(content) ~= "table" then content = tostring(content) end
      out[#out + 1] = {role = "tool", tool_call_id = m.tool_call_id, content = content}
    elseif m.role == "assistant" and type(m.tool_calls) == "table" and #m.tool_calls > 0 then
      local calls = {}
      for j, c in ipairs(m.tool_calls) do
        calls[j] = {id = c.id, type = "function",
                    ["function"] = {name = c.name, arguments = S.arguments_json(c)}}
      end
      local content = m.content
      if content == nil or content == "" then content = S.null end
      out[#out + 1] = {role = "assistant", content = content, tool_calls = calls}
    else
      out[#out + 1] = {role = m.role, content = m.content, name = m.name}
    end
  end
  return out
end

local convert_tools = S.function_tools

function A.build(req, opts)
  opts = opts or {}
  local stream = opts.stream
  if stream == nil then stream = req.stream end
  local body = {
    model = req.model,
    messages = convert_messages(req),
    max_tokens = req.max_tokens,
    temperature = req.temperature,
    stop = S.stop_list(req.stop),
    tools = convert_tools(req.tools),
  }
  if stream then
    body.stream = true
    body.stream_options = {include_usage = true}
  end
  S.merge(body, req.extra)
  local headers = {}
  local key = S.key(opts)
  if key then headers.authorization = "Bearer " .. key end
  if stream then headers.accept = "text/event-stream" end
  return {
    url = S.join_url(opts.base or A.env.default_base, "/v1", "/chat/completions"),
    method = "POST",
    headers = S.headers(opts, headers),
    body = S.encode(body),
  }
end

--------------------------------------------------------------------------
-- responses
--------------------------------------------------------------------------

local function usage_of(u)
  u = S.val(u)
  if type(u) ~= "table" then return nil end
  local prompt = S.count(u.prompt_tokens)
  local completion = S.count(u.completion_tokens)
  if prompt == nil and completion == nil then return nil end
  local details = S.val(u.prompt_tokens_details)
  local cached = type(details) == "table" and S.count(details.cached_tokens) or 0
  -- cached tokens are part of prompt_tokens: more is a server's mistake,
  -- and must not make input_tokens negative
  cached = math.min(cached, prompt or 0)
  return {
    input_tokens = (prompt or 0) - cached,
    output_tokens = completion or 0,
    cache_read_tokens = cached,
    cache_write_tokens = 0,
  }
end

-- {type, message, code, status} from an error body, or nil. Shapes seen:
-- OpenAI {"error":{"message","type","param","code"}}, servers that send
-- {"error":"text"}, and vLLM's top-level {"object":"error","message",...}.
local function error_of(body)
  if type(body) ~= "table" then return nil end
  local e = S.val(body.error)
  if type(e) == "string" then return {message = e} end
  if type(e) ~= "table" then
    if body.object == "error" then e = body else return nil end
  end
  local t, code = S.val(e.type), S.val(e.code)
  local out = {message = S.val(e.message), code = code}
  if type(t) == "string" and t ~= "" then out.type = t end
  if type(code) == "number" and code >= 400 and code <= 599 then out.status = S.whole(code) end
  return out
end

local function text_of(content)
  content = S.val(content)
  if type(content) == "string" then return content end
  if type(content) == "table" then
    local parts = {}
    for _, c in ipairs(content) do
      if type(c) == "table" and type(c.text) == "string" then parts[#parts + 1] = c.text end
    end
    return table.concat(parts)
  end
  return ""
end

local function calls_of(list)
  list = S.val(list)
  if type(list) ~= "table" or #list == 0 then return nil end
  local calls = {}
  for _, c in ipairs(list) do
    if type(c) == "table" then -- anything else is no call at all
      local f = S.tbl(c["function"]) or {}
      local args = S.val(f.arguments)
      if type(args) == "table" then -- some servers send an object
        calls[#calls + 1] = S.tool_call(c.id, f.name, nil, args)
      else
        calls[#calls + 1] = S.tool_call(c.id, f.name, args)
      end
    end
  end
  return #calls > 0 and calls or nil
end

function A.parse(res, opts)
  local body = S.decode(res.body)
  if not S.ok_status(res.status) then
    S.raise_http(A.name, res, error_of(body))
  end
  if type(body) ~= "table" then S.raise_malformed(A.name, res, "response is not JSON") end
  local err = error_of(body)
  if err then
    error(S.error(A.name, {provider_type = err.type, message = err.message, code = err.code,
                           status = err.status or tonumber(res.status)}), 0)
  end
  local choices = S.val(body.choices)
  local choice = type(choices) == "table" and S.val(choices[1])
  if type(choice) ~= "table" then
    S.raise_malformed(A.name, res, "response has no choices")
  end
  local msg = S.tbl(choice.message) or {}
  return {
    id = S.val(body.id),
    text = text_of(msg.content),
    refusal = S.val(msg.refusal),
    model = S.str(body.model),
    finish_reason = S.str(choice.finish_reason),
    usage = usage_of(body.usage),
    tool_calls = calls_of(msg.tool_calls),
  }
end

--------------------------------------------------------------------------
-- streaming
--------------------------------------------------------------------------

-- data: {chunk} lines, then data: [DONE]. Text from choices[1].delta.content;
-- tool calls arrive in pieces keyed by their index (id and name first, then
-- argument fragments); usage in the last chunk before [DONE].
function A.stream(on_text, opts)
  local p = {done = false}
  local add_text = S.text_buffer(p)
  local calls_by_index, order = {}, {}
  local usage
  local raw, raw_len, events = {}, 0, 0

  local function emit(piece)
    if piece == nil or piece == "" then return end
    add_text(piece)
    if on_text then on_text(piece) end
  end

  local function fail(e, status)
    local err = S.error(A.name, {provider_type = e.type, message = e.message, code = e.code,
                                 status = e.status or status})
    p.failed = err
    error(err, 0)
  end

  local function on_event(name, data)
    events = events + 1
    if data:match("^%s*%[DONE%]%s*$") then
      p.done = true
      return
    end
    local chunk = S.decode(data)
    if type(chunk) ~= "table" then
      S.raise_malformed(A.name, {status = 200, body = data}, "stream chunk is not JSON")
    end
    local e = error_of(chunk)
    if e or name == "error" then fail(e or {message = data}) end
    p.id = p.id or S.val(chunk.id)
    local model = S.str(chunk.model)
    if model and model ~= "" then p.model = model end
    local u = usage_of(chunk.usage)
    if u then
      usage = u
      p.usage = u
    end
    local choices = S.val(chunk.choices)
    if type(choices) ~= "table" then return end
    for _, c in ipairs(choices) do
      c = S.tbl(c) or {}
      if (S.whole(c.index) or 0) == 0 then
        local d = S.tbl(c.delta) or {}
        emit(text_of(d.content))
        for n, tc in ipairs(S.tbl(d.tool_calls) or {}) do
          if type(tc) == "table" then -- anything else is no piece of a call
            local idx = S.whole(tc.index) or (n - 1)
            local acc = calls_by_index[idx]
            if not acc then
              acc = {args = {}}
              calls_by_index[idx] = acc
              order[#order + 1] = idx
            end
            acc.id = acc.id or S.str(tc.id)
            local f = S.tbl(tc["function"]) or {}
            if S.str(f.name) then acc.name = (acc.name or "") .. f.name end
            local a = S.val(f.arguments)
            if type(a) == "string" then
              acc.args[#acc.args + 1] = a
            elseif type(a) == "table" then
              acc.object = a
            end
          end
        end
        local fr = S.str(c.finish_reason)
        if fr then p.finish_reason = fr end
      end
    end
  end

  local framer = S.sse(on_event)

  function p:feed(chunk)
    if self.failed then error(self.failed, 0) end
    if events == 0 and raw_len < 65536 and chunk then
      raw[#raw + 1] = chunk
      raw_len = raw_len + #chunk
    end
    framer:feed(chunk)
  end

  function p:finish()
    if self.failed then error(self.failed, 0) end
    framer:finish()
    if events == 0 then -- not SSE at all: maybe a JSON error body
      local e = error_of(S.decode(table.concat(raw)))
      if e then fail(e) end
    end
    -- [DONE] ends a complete stream; servers that never send it have at
    -- least said why the answer finished
    if not self.done and not self.finish_reason then
      S.raise_truncated(A.name, "data: [DONE]")
    end
    local calls = {}
    table.sort(order)
    for _, idx in ipairs(order) do
      local acc = calls_by_index[idx]
      if acc.object then
        calls[#calls + 1] = S.tool_call(acc.id, acc.name, nil, acc.object)
      else
        calls[#calls + 1] = S.tool_call(acc.id, acc.name, table.concat(acc.args))
      end
    end
    return {
      id = self.id,
      text = self.text,
      model = self.model,
      finish_reason = self.finish_reason,
      usage = usage,
      tool_calls = #calls > 0 and calls or nil,
    }
  end

  return p
end

return A
