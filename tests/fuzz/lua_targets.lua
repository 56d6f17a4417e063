-- The checks behind the Lua fuzz targets (tests/fuzz/fuzz_lua.c): one
-- function per target, given the fuzzer's bytes. A broken invariant
-- raises, the harness aborts and libFuzzer keeps the input as a crash.
--
-- An input is control bytes, then the payload (a response body or a
-- stream):
--   mode       provider targets only: bit 0 stream (1) or parse (0),
--              bits 1-4 the HTTP status, bits 5-7 the response headers
--              (STATUSES and HEADERS below)
--   cuts       k = byte % 16, then k bytes: the lengths of the first k
--              chunks the payload is fed in (0 feeds ""); the rest of the
--              payload is the last chunk
--   payload    everything after
-- so a seed is a recorded payload behind a few bytes, e.g. for the sse
-- target (three cuts: 5, 32 and 1 bytes, then the rest)
--   printf '\003\005\040\001' | cat - tests/fixtures/openai/chat_stream.sse
local S = require "moonspan.wire"
local cjson = require "cjson"

local T = {}

local function fail(fmt, ...)
  error("invariant broken: " .. string.format(fmt, ...), 2)
end

-- A short readable form of any value, for failure messages.
local function show(v, depth)
  depth = depth or 0
  if type(v) == "string" then return string.format("%q", #v > 120 and v:sub(1, 120) .. "..." or v) end
  if type(v) ~= "table" or depth > 3 then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. show(v[k], depth + 1) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- Deep equality; NaN equals NaN, so a NaN in both results is no
-- difference (lua-cjson decodes "NaN"), which is why this is not
-- moonspan.scorers' deep_equal.
local function same(a, b)
  if a == b or (a ~= a and b ~= b) then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

-- The payload and the chunks to feed it in, from the cut bytes at `pos`.
local function cuts(data, pos)
  local k = (data:byte(pos) or 0) % 16
  local lens = {data:byte(pos + 1, pos + k)}
  local payload = data:sub(pos + k + 1)
  local chunks, at = {}, 1
  for _, n in ipairs(lens) do
    chunks[#chunks + 1] = payload:sub(at, at + n - 1)
    at = at + n
  end
  chunks[#chunks + 1] = payload:sub(at)
  return payload, chunks
end

-- Runs `run` with the payload fed whole, in the fuzzer's chunks, and a
-- byte at a time; all must give the same result. Byte by byte only for
-- short payloads: it costs a framer call per byte (and a long line is
-- quadratic), and short inputs already reach every boundary case.
local function same_however_fed(payload, chunks, run)
  local ref = run({payload})
  local feedings = {chunks = chunks}
  if #payload <= 256 then
    local bytes = {}
    for i = 1, #payload do bytes[i] = payload:sub(i, i) end
    feedings.bytes = bytes
  end
  for how, list in pairs(feedings) do
    local got = run(list)
    if not same(ref, got) then
      fail("fed %s, %s; fed whole, %s", how, show(got), show(ref))
    end
  end
  return ref
end

--------------------------------------------------------------------------
-- framers
--------------------------------------------------------------------------

-- Feeds `list` to the framer new_framer(callback) makes, which must not
-- raise: what it passed on (the callback's arguments, a list per call)
-- and what finish() returned.
local function framed(new_framer, list)
  local items = {}
  local f = new_framer(function(...) items[#items + 1] = {...} end)
  local ok, rest = pcall(function()
    for _, c in ipairs(list) do f:feed(c) end
    return f:finish()
  end)
  if not ok then fail("the framer raised %s", show(rest)) end
  return {items = items, rest = rest}
end

function T.sse(data)
  local payload, chunks = cuts(data, 1)
  local got = same_however_fed(payload, chunks, function(list) return framed(S.sse, list) end)
  for _, e in ipairs(got.items) do
    local name, d = e[1], e[2]
    -- an empty or absent event type is "message" (WHATWG, "dispatch the event")
    if type(name) ~= "string" or name == "" or name:find("[\r\n]") then
      fail("event name %s", show(name))
    end
    if type(d) ~= "string" or d:find("\r") then fail("event data %s", show(d)) end
  end
  if got.rest ~= nil and type(got.rest) ~= "string" then fail("finish() returned %s", show(got.rest)) end
end

-- NDJSON framing is simple enough to state whole: the non-blank lines,
-- with LF, CRLF and a lone CR all ending a line.
local function ndjson_lines(payload)
  local lines = {}
  local text = payload:gsub("\r\n", "\n"):gsub("\r", "\n")
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do
    if l:find("%S") then lines[#lines + 1] = {l} end
  end
  return lines
end

function T.ndjson(data)
  local payload, chunks = cuts(data, 1)
  local got = same_however_fed(payload, chunks, function(list) return framed(S.ndjson, list) end)
  local want = ndjson_lines(payload)
  if not same(got.items, want) then fail("lines %s, expected %s", show(got.items), show(want)) end
  if got.rest ~= nil then fail("finish() returned %s", show(got.rest)) end
end

--------------------------------------------------------------------------
-- provider adapters
--------------------------------------------------------------------------

local STATUSES = {200, 201, 204, 400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 503, 529, false}
local HEADERS = {
  {}, false, {["retry-after"] = "3"}, {["retry-after-ms"] = "250.5"},
  {["Retry-After"] = {"7", "8"}}, {["retry-after"] = "Wed, 21 Oct 2015 07:28:00 GMT"},
  {["retry-after"] = "-1", ["retry-after-ms"] = "nan"}, {["retry-after"] = "1e999"},
}
-- Long enough for the key-shaped redaction too; the harness checks that
-- it never reaches an error message, whatever the server echoes.
local KEY = "sk-fuzz-7Qd9KpX2vLw4TnR8yB3m"
-- What s:record_llm accepts (MS_TOKENS_MAX in telemetry/ms_trace.h).
local TOKENS_MAX = 1000000000000

local function opt_type(v, want, what)
  if v ~= nil and type(v) ~= want then fail("%s is %s, expected nil or a %s", what, show(v), want) end
end

local function finite(v) return type(v) == "number" and v == v and v > -math.huge and v < math.huge end

-- What llm.call and scripts rely on in an error an adapter raises.
local function check_error(name, e)
  if type(e) ~= "table" then fail("raised a %s, not an error table: %s", type(e), show(e)) end
  if type(e.type) ~= "string" or e.type == "" then fail("error type %s in %s", show(e.type), show(e)) end
  if type(e.message) ~= "string" then fail("error message %s", show(e.message)) end
  if type(e.retryable) ~= "boolean" then fail("retryable %s", show(e.retryable)) end
  if e.provider ~= name then fail("provider %s", show(e.provider)) end
  if e.status ~= nil and math.type(e.status) ~= "integer" then fail("status %s", show(e.status)) end
  if e.retry_after_ms ~= nil and not (finite(e.retry_after_ms) and e.retry_after_ms >= 0) then
    fail("retry_after_ms %s", show(e.retry_after_ms))
  end
  -- llm.call strips the call's credentials from an error before anyone
  -- sees it: inside the adapter (S.error's key argument), or after it with
  -- S.redact_error where wire.lua has that; either way the key is gone
  if S.redact_error then S.redact_error(e, S.secrets(KEY)) end
  if e.message:find(KEY, 1, true) then fail("the API key is in the message %s", show(e.message)) end
end

-- What llm.call records (s:record_llm, span attributes, --record's JSON)
-- and what the README promises scripts.
local function check_response(r)
  if type(r) ~= "table" then fail("returned %s, not a response table", show(r)) end
  if type(r.text) ~= "string" then fail("text %s", show(r.text)) end
  opt_type(r.model, "string", "model")
  opt_type(r.finish_reason, "string", "finish_reason")
  opt_type(r.usage, "table", "usage")
  for _, k in ipairs{"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"} do
    local v = r.usage and r.usage[k]
    if v ~= nil and not (math.type(v) == "integer" and v >= 0 and v <= TOKENS_MAX) then
      fail("usage.%s is %s, not a token count", k, show(v))
    end
  end
  if r.cost_usd ~= nil and not (finite(r.cost_usd) and r.cost_usd >= 0) then
    fail("cost_usd %s", show(r.cost_usd))
  end
  opt_type(r.timings, "table", "timings")
  for k, v in pairs(r.timings or {}) do
    if not (finite(v) and v >= 0) then fail("timings.%s is %s", tostring(k), show(v)) end
  end
  opt_type(r.tool_calls, "table", "tool_calls")
  if r.tool_calls and #r.tool_calls == 0 then fail("tool_calls is an empty list") end
  for i, c in pairs(r.tool_calls or {}) do
    if math.type(i) ~= "integer" or type(c) ~= "table" then fail("tool_calls[%s] = %s", show(i), show(c)) end
    opt_type(c.id, "string", "tool call id")
    opt_type(c.name, "string", "tool call name")
    if type(c.arguments_json) ~= "string" then fail("arguments_json %s", show(c.arguments_json)) end
    if c.arguments_error ~= nil then
      if type(c.arguments_error) ~= "string" or c.arguments ~= nil then fail("tool call %s", show(c)) end
    elseif type(c.arguments) ~= "table" then
      fail("tool call arguments %s (expected a table, or arguments_error)", show(c.arguments))
    end
    -- llm.call --record stores the call as JSON
    local ok, err = pcall(cjson.encode, c)
    if not ok then fail("tool call %s does not encode: %s", show(c), err) end
  end
end

-- A whole response through A.parse, as llm.call does for a non-streamed
-- call and for any status other than 2xx.
local function parse(A, data)
  local mode = data:byte(1) or 0
  local status = STATUSES[(mode >> 1) % 16 + 1] or nil
  local headers = HEADERS[(mode >> 5) + 1] or nil
  local payload = cuts(data, 2)
  local ok, r = pcall(A.parse, {status = status, headers = headers, body = payload}, {key = KEY})
  if not ok then
    check_error(A.name, r)
    if not S.ok_status(status) and r.status ~= status then
      fail("HTTP %s raised an error with status %s", show(status), show(r.status))
    end
    return
  end
  if not S.ok_status(status) then fail("HTTP %d returned a response %s", status, show(r)) end
  check_response(r)
end

-- A stream through A.stream, however it is cut: the same text pieces and
-- the same response or error. A feed that raises ends the stream, as the
-- transport aborts the transfer.
local function stream(A, data)
  local payload, chunks = cuts(data, 2)
  same_however_fed(payload, chunks, function(list)
    local pieces = {}
    local p = A.stream(function(piece)
      if type(piece) ~= "string" or piece == "" then fail("on_text(%s)", show(piece)) end
      pieces[#pieces + 1] = piece
    end, {key = KEY})
    local ok, r = pcall(function()
      for _, c in ipairs(list) do p:feed(c) end
      return p:finish()
    end)
    -- llm.call keeps the text of a stream that broke after text arrived
    if type(p.text) ~= "string" then fail("partial text %s", show(p.text)) end
    if not ok then
      check_error(A.name, r)
    else
      check_response(r)
      if r.text ~= table.concat(pieces) then
        fail("text %s is not the pieces on_text got, %s", show(r.text), show(pieces))
      end
    end
    return {ok = ok, r = r, pieces = pieces}
  end)
end

for _, name in ipairs{"anthropic", "openai", "ollama"} do
  local A = require("moonspan.providers." .. name)
  T[name] = function(data)
    if (data:byte(1) or 0) & 1 == 1 then return stream(A, data) end
    return parse(A, data)
  end
end

--------------------------------------------------------------------------
-- a mutator that knows JSON, for the provider targets
--------------------------------------------------------------------------

-- Byte flips seldom turn an object into a number, or drop a key, and that
-- is what breaks adapters. This decodes a JSON text of the payload (the
-- body, else one line of it: an SSE data: line, an NDJSON line), puts a
-- value of another kind somewhere in it, and encodes it back; nil when
-- there is none. fuzz_lua.c uses T.mutators[target], where there is one,
-- for half the mutations.
local ODD = {
  function() return cjson.null end, function() return 0 end, function() return -1 end,
  function() return 2.5 end, function() return 1e300 end, function() return 1e13 end,
  function() return "" end, function() return "x" end, function() return true end,
  function() return {} end, function() return {1} end, function() return {{}} end,
  function() return {type = "text", text = "x"} end,
}

-- Every (table, key) of a decoded value, for picking one at random.
local function slots(v, out)
  if type(v) == "table" then
    for k, x in pairs(v) do
      out[#out + 1] = {v, k}
      slots(x, out)
    end
  end
  return out
end

local function mutate_json(text)
  local ok, v = pcall(cjson.decode, text)
  if not ok or type(v) ~= "table" then return nil end
  local all = slots(v, {})
  if #all == 0 then return nil end
  local t, k = table.unpack(all[math.random(#all)])
  local r = math.random(#ODD + 2)
  if r <= #ODD then
    t[k] = ODD[r]()
  elseif r == #ODD + 1 then
    t[k] = nil
  else -- another part of the document (an ancestor makes a cycle: encode refuses)
    local t2, k2 = table.unpack(all[math.random(#all)])
    t[k] = t2[k2]
  end
  local ok2, out = pcall(cjson.encode, v)
  return ok2 and out or nil
end

local function mutate(data, seed)
  math.randomseed(seed)
  local head = data:sub(1, 2 + (data:byte(2) or 0) % 16)
  local payload = data:sub(#head + 1)
  local whole = mutate_json(payload)
  if whole then return head .. whole end
  local lines = {}
  for l in payload:gmatch("[^\n]*\n?") do lines[#lines + 1] = l end
  for _ = 1, 4 do
    local i = math.random(#lines)
    local pre, json, post = lines[i]:match("^(data: ?)(.-)(\r?\n?)$")
    if not pre then pre, json, post = "", lines[i]:match("^(.-)(\r?\n?)$") end
    local new = mutate_json(json)
    if new then
      lines[i] = pre .. new .. post
      return head .. table.concat(lines)
    end
  end
  return nil
end

T.mutators = {anthropic = mutate, openai = mutate, ollama = mutate}

return T
