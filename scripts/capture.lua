-- Content capture: what llm.call stores of its prompt and answer when the
-- run or the call asks (--capture-content, capture = true), as the
-- OpenTelemetry GenAI conventions (v1.41.0) name and shape it:
--
--   gen_ai.system_instructions  [{"type":"text","content":"..."}]
--   gen_ai.input.messages       [{"role":"user","parts":[{"type":"text","content":"..."}]}, ...]
--   gen_ai.output.messages      [{"role":"assistant","parts":[...],"finish_reason":"stop"}]
--
-- each a JSON text in a string attribute of the call's span. Parts are
-- "text" {content}, "tool_call" {id, name, arguments} and
-- "tool_call_response" {id, response}; content of another shape (a table
-- of provider blocks) is kept as a part of its own "type" when it has one.
-- Every string inside is redacted (moonspan.redact) before it is encoded,
-- and an attribute longer than llm.defaults.capture_max_bytes is cut: its
-- longest texts are shortened, each ending in "[truncated: N bytes]",
-- until the JSON fits; it stays valid JSON.

local cjson = require "cjson"

local C = {}

C.MAX_BYTES = 16384 -- per attribute: 16 KiB of JSON

-- Whether call req captures: its capture field when given, else the run's
-- --capture-content. A capture that is not a boolean is refused.
function C.wanted(req, refuse)
  local c = req.capture
  if c == nil then return moonspan.capture_content == true end
  if type(c) ~= "boolean" then
    refuse("invalid_request_error", "llm.call: capture must be true or false (store this call's prompt and "
      .. "answer, or not), got a " .. type(c))
  end
  return c
end

local function redacted(v)
  if type(v) == "string" then return (moonspan.redact(v)) end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    if type(x) ~= "function" then out[k] = redacted(x) end
  end
  return out
end

-- The parts of one message's content (a string, or a list of provider
-- blocks such as {type = "text", text = ...}).
local function content_parts(content, parts)
  if type(content) == "string" then
    parts[#parts + 1] = {type = "text", content = content}
  elseif type(content) == "table" then
    for _, b in ipairs(content) do
      if type(b) == "table" and b.type == "text" and type(b.text) == "string" then
        parts[#parts + 1] = {type = "text", content = b.text}
      elseif type(b) == "string" then
        parts[#parts + 1] = {type = "text", content = b}
      elseif type(b) == "table" then
        local p = {}
        for k, x in pairs(b) do p[k] = x end
        p.type = type(b.type) == "string" and b.type or "unknown"
        parts[#parts + 1] = p
      end
    end
  end
  return parts
end

local function tool_call_parts(calls, parts)
  for _, c in ipairs(type(calls) == "table" and calls or {}) do
    if type(c) == "table" then
      parts[#parts + 1] = {type = "tool_call", id = c.id, name = c.name, arguments = c.arguments}
    end
  end
  return parts
end

local function text_part_if_empty(parts)
  -- an empty list would encode as {}, not []
  if #parts == 0 then parts[1] = {type = "text", content = ""} end
  return parts
end

local function input_messages(req)
  local list = {}
  for _, m in ipairs(req.messages) do
    local parts = {}
    if m.role == "tool" then
      parts[1] = {type = "tool_call_response", id = m.tool_call_id, response = m.content}
    else
      content_parts(m.content, parts)
      tool_call_parts(m.tool_calls, parts)
    end
    list[#list + 1] = {role = m.role, name = m.name, parts = text_part_if_empty(parts)}
  end
  return list
end

local function output_messages(resp)
  local parts = {}
  if type(resp.text) == "string" and resp.text ~= "" then
    parts[1] = {type = "text", content = resp.text}
  end
  tool_call_parts(resp.tool_calls, parts)
  return {{role = "assistant", parts = text_part_if_empty(parts), finish_reason = resp.finish_reason or "stop"}}
end

-- The strings of v that can be cut (text contents and tool responses), as
-- {table, key} pairs.
local function texts(v, out)
  for k, x in pairs(v) do
    if type(x) == "string" and (k == "content" or k == "response") then
      out[#out + 1] = {v, k}
    elseif type(x) == "table" then
      texts(x, out)
    end
  end
  return out
end

-- s cut to at most n bytes, at a UTF-8 character boundary.
local function cut_utf8(s, n)
  if n <= 0 then return "" end
  while n > 0 and n < #s and (s:byte(n + 1) & 0xC0) == 0x80 do n = n - 1 end
  return s:sub(1, n)
end

-- JSON text of v within max bytes: the longest text shortened, and marked,
-- until it fits (or nothing is left to shorten).
local function encode_within(v, max)
  local json = cjson.encode(v)
  local cut = {} -- bytes left out, per {table, key}
  for _ = 1, 64 do
    if #json <= max then return json end
    local longest, len = nil, -1
    for _, tk in ipairs(texts(v, {})) do
      local s = tk[1][tk[2]]
      if #s > len then longest, len = tk, #s end
    end
    if not longest or len <= 0 then break end
    local t, k = longest[1], longest[2]
    local key = tostring(t) .. k
    -- strip an earlier marker, then cut what is over (JSON escapes can
    -- make it more than the bytes themselves: the loop goes on if so)
    local s = t[k]
    if cut[key] then s = s:gsub(" %[truncated: %d+ bytes%]$", "") end
    local original = (cut[key] or 0) + #s
    local keep = cut_utf8(s, #s - (#json - max) - 40)
    cut[key] = original - #keep
    t[k] = keep .. string.format(" [truncated: %d bytes]", cut[key])
    json = cjson.encode(v)
  end
  if #json <= max then return json end
  return cjson.encode({{role = "user", parts = {{type = "text", content = "[truncated: too large to keep]"}}}})
end

-- The limit: llm.defaults.capture_max_bytes when it is a whole number
-- above 256, else 16 KiB.
local function limit(m)
  return math.type(m) == "integer" and m > 256 and m or C.MAX_BYTES
end

-- Stores the call's system prompt and messages on span s, each attribute
-- within max bytes.
function C.input(s, req, max)
  max = limit(max)
  if type(req.system) == "string" then
    s:set("gen_ai.system_instructions", encode_within(redacted({{type = "text", content = req.system}}), max))
  end
  s:set("gen_ai.input.messages", encode_within(redacted(input_messages(req)), max))
end

-- Stores the answer (a stream's assembled text) on span s.
function C.output(s, resp, max)
  s:set("gen_ai.output.messages", encode_within(redacted(output_messages(resp)), limit(max)))
end

return C
