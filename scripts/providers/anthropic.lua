-- Anthropic Messages API adapter: POST {base}/v1/messages.
--
-- Pure: build() makes the HTTP request, parse() reads a whole response,
-- stream() reads server-sent events as they arrive. The transport, the
-- retries and the span live in llm.lua / host/http.c.
--
-- Usage is reported as Anthropic reports it: input_tokens excludes cache
-- reads and writes, which come separately (cache_read_input_tokens,
-- cache_creation_input_tokens). Streaming: message_start carries the input
-- side, message_delta the (cumulative) output tokens.
local S = require "moonspan.wire"

local A = {}
A.name = "anthropic"
A.env = {key = "ANTHROPIC_API_KEY", base = "ANTHROPIC_BASE_URL", default_base = "https://api.anthropic.com"}
A.needs_key = true
-- Anthropic requires max_tokens: a call that gives none asks for this many
-- (what a budget then counts as the call's most output).
A.default_max_tokens = 1024
A.version = "2023-06-01"

local FINISH = {end_turn = "stop", stop_sequence = "stop", max_tokens = "length", tool_use = "tool_calls"}

local function finish_reason(r)
  r = S.str(r)
  if r == nil then return nil end
  return FINISH[r] or r
end

--------------------------------------------------------------------------
-- request
--------------------------------------------------------------------------

local function text_of(content)
  if type(content) == "string" then return content end
  if type(content) == "table" then -- native blocks: the text ones
    local parts = {}
    for _, b in ipairs(content) do
      if type(b) == "table" and b.type == "text" then parts[#parts + 1] = b.text end
    end
    return table.concat(parts, "\n")
  end
  return ""
end

-- Anthropic content blocks from a string or a native array (copied).
local function blocks(content)
  if type(content) == "table" then
    local t = {}
    for i, b in ipairs(content) do t[i] = b end
    return t
  end
  if content == nil or content == "" then return {} end
  return {{type = "text", text = tostring(content)}}
end

-- Our messages -> Anthropic's: system messages move to the top-level
-- system; an assistant message with tool_calls gets tool_use blocks; tool
-- results (role "tool") become tool_result blocks in one user message,
-- which a following user message joins (the roles must alternate).
local function convert_messages(req)
  local out, system = {}, {}
  if req.system ~= nil and req.system ~= "" then system[#system + 1] = req.system end
  local results -- the user message holding the latest run of tool results
  for i, m in ipairs(req.messages or {}) do
    local role = m.role
    if role == "system" then
      system[#system + 1] = m.content
    elseif role == "tool" then
      if type(m.tool_call_id) ~= "string" then
        S.raise_invalid(string.format("llm.call: messages[%d] (role tool) needs tool_call_id", i))
      end
      local content = m.content
      if content ~= nil and type(content) ~= "string" and type(content) ~= "table" then
        content = tostring(content)
      end
      local block = {type = "tool_result", tool_use_id = m.tool_call_id, content = content}
      if m.is_error then block.is_error = true end
      if not results then
        results = {role = "user", content = {}}
        out[#out + 1] = results
      end
      results.content[#results.content + 1] = block
    elseif role == "user" and results then
      for _, b in ipairs(blocks(m.content)) do results.content[#results.content + 1] = b end
      results = nil
    elseif role == "assistant" and type(m.tool_calls) == "table" and #m.tool_calls > 0 then
      local content = blocks(m.content)
      for _, c in ipairs(m.tool_calls) do
        content[#content + 1] = {type = "tool_use", id = c.id, name = c.name, input = S.arguments_value(c)}
      end
      out[#out + 1] = {role = "assistant", content = content}
      results = nil
    else
      out[#out + 1] = {role = role, content = m.content}
      results = nil
    end
  end
  local sys
  if #system == 1 then
    sys = system[1] -- a string, or native blocks passed through
  elseif #system > 1 then
    local parts = {}
    for _, s in ipairs(system) do parts[#parts + 1] = text_of(s) end
    sys = table.concat(parts, "\n\n")
  end
  return out, sys
end

local function convert_tools(tools)
  if not S.check_tools(tools) then return nil end
  local out = {}
  for i, t in ipairs(tools) do
    out[i] = {name = t.name, description = t.description, input_schema = S.schema(t.parameters)}
  end
  return out
end

function A.build(req, opts)
  opts = opts or {}
  local stream = opts.stream
  if stream == nil then stream = req.stream end
  local messages, system = convert_messages(req)
  local body = {
    model = req.model,
    messages = messages,
    system = system,
    max_tokens = req.max_tokens or A.default_max_tokens,
    temperature = req.temperature,
    stop_sequences = S.stop_list(req.stop),
    tools = convert_tools(req.tools),
    stream = stream and true or nil,
  }
  S.merge(body, req.extra)
  local headers = {["anthropic-version"] = A.version}
  local key = S.key(opts)
  if key then headers["x-api-key"] = key end
  if stream then headers.accept = "text/event-stream" end
  return {
    url = S.join_url(opts.base or A.env.default_base, "/v1", "/messages"),
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
  return {
    input_tokens = S.count(u.input_tokens) or 0,
    output_tokens = S.count(u.output_tokens) or 0,
    cache_read_tokens = S.count(u.cache_read_input_tokens) or 0,
    cache_write_tokens = S.count(u.cache_creation_input_tokens) or 0,
  }
end

-- The {type, message} of an Anthropic error body
-- ({"type":"error","error":{"type":...,"message":...}}), or nil.
local function error_of(body)
  if type(body) ~= "table" then return nil end
  local e = S.val(body.error)
  if type(e) == "table" then
    return {type = S.val(e.type), message = S.val(e.message)}
  elseif type(e) == "string" then
    return {message = e}
  end
  if body.type == "error" then return {message = S.val(body.message)} end
  return nil
end

function A.parse(res, opts)
  local body = S.decode(res.body)
  if not S.ok_status(res.status) then
    S.raise_http(A.name, res, error_of(body))
  end
  if type(body) ~= "table" then S.raise_malformed(A.name, res, "response is not JSON") end
  local err = error_of(body)
  if err then -- an error object with a 2xx status (a proxy)
    error(S.error(A.name, {provider_type = err.type, message = err.message, status = tonumber(res.status)}), 0)
  end
  local content = S.val(body.content)
  if type(content) ~= "table" then
    S.raise_malformed(A.name, res, "response has no content array")
  end
  local texts, calls = {}, {}
  for _, b in ipairs(content) do
    if type(b) == "table" then
      if b.type == "text" then
        texts[#texts + 1] = S.str(b.text) or ""
      elseif b.type == "tool_use" then
        calls[#calls + 1] = S.tool_call(b.id, b.name, nil, S.val(b.input) or {})
      end
    end
  end
  return {
    id = S.val(body.id),
    text = table.concat(texts),
    model = S.str(body.model),
    finish_reason = finish_reason(body.stop_reason),
    stop_sequence = S.val(body.stop_sequence),
    usage = usage_of(body.usage),
    tool_calls = #calls > 0 and calls or nil,
  }
end

--------------------------------------------------------------------------
-- streaming
--------------------------------------------------------------------------

-- Events: message_start, content_block_start/delta/stop, message_delta,
-- message_stop, ping, error. Text comes from text_delta; tool input from
-- input_json_delta pieces, joined per content block.
function A.stream(on_text, opts)
  local p = {done = false}
  local add_text = S.text_buffer(p)
  local blocks_by_index, order = {}, {}
  local usage
  local raw, raw_len, events = {}, 0, 0 -- the body while no event came (an error page?)

  local function emit(piece)
    if piece == nil or piece == "" then return end
    add_text(piece)
    if on_text then on_text(piece) end
  end

  local function set_usage(u, start)
    u = S.val(u)
    if type(u) ~= "table" then return end
    usage = usage or {input_tokens = 0, output_tokens = 0, cache_read_tokens = 0, cache_write_tokens = 0}
    -- message_delta's usage is cumulative; fields it leaves out keep
    -- what message_start said
    local function take(field, src)
      local v = S.count(u[src])
      if v then usage[field] = v end
    end
    take("input_tokens", "input_tokens")
    take("output_tokens", "output_tokens")
    take("cache_read_tokens", "cache_read_input_tokens")
    take("cache_write_tokens", "cache_creation_input_tokens")
    p.usage = usage
    if start then p.input_seen = true end
  end

  local function on_event(name, data)
    events = events + 1
    local ev = S.decode(data)
    if type(ev) ~= "table" then
      S.raise_malformed(A.name, {status = 200, body = data}, "stream event " .. name .. " is not JSON")
    end
    local t = S.val(ev.type) or name
    if t == "message_start" then
      local m = S.tbl(ev.message) or {}
      p.id = S.val(m.id)
      p.model = S.str(m.model)
      set_usage(m.usage, true)
    elseif t == "content_block_start" then
      local b = S.tbl(ev.content_block) or {}
      local idx = S.whole(ev.index) or #order
      local blk = {type = b.type, id = b.id, name = b.name, json = {}}
      if blocks_by_index[idx] == nil then order[#order + 1] = idx end
      blocks_by_index[idx] = blk
      if b.type == "text" then emit(S.str(b.text)) end
    elseif t == "content_block_delta" then
      local d = S.tbl(ev.delta) or {}
      local blk = blocks_by_index[S.whole(ev.index) or -1]
      if d.type == "text_delta" then
        emit(S.str(d.text))
      elseif d.type == "input_json_delta" and blk then
        blk.json[#blk.json + 1] = S.str(d.partial_json) or ""
      end
    elseif t == "message_delta" then
      local d = S.tbl(ev.delta) or {}
      if S.str(d.stop_reason) then
        p.finish_reason = finish_reason(d.stop_reason)
        p.stop_sequence = S.val(d.stop_sequence)
      end
      set_usage(ev.usage)
    elseif t == "message_stop" then
      p.done = true
    elseif t == "error" then
      local e = error_of(ev) or {}
      local fail = S.error(A.name, {provider_type = e.type, message = e.message})
      p.failed = fail
      error(fail, 0)
    end -- ping and unknown events: nothing
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
      local body = table.concat(raw)
      local e = error_of(S.decode(body))
      if e then
        error(S.error(A.name, {provider_type = e.type, message = e.message}), 0)
      end
    end
    if not self.done and not self.finish_reason then
      S.raise_truncated(A.name, "message_stop")
    end
    local calls = {}
    for _, idx in ipairs(order) do
      local blk = blocks_by_index[idx]
      if blk.type == "tool_use" then
        calls[#calls + 1] = S.tool_call(blk.id, blk.name, table.concat(blk.json))
      end
    end
    return {
      id = self.id,
      text = self.text,
      model = self.model,
      finish_reason = self.finish_reason,
      stop_sequence = self.stop_sequence,
      usage = usage,
      tool_calls = #calls > 0 and calls or nil,
    }
  end

  return p
end

return A
