-- Stream framing and the small helpers the three HTTP adapters share
-- (anthropic.lua, openai.lua, ollama.lua). Not a provider itself.
--
-- Framing:  sse(on_event) and ndjson(on_line) return framers with
--           :feed(bytes) (chunks split anywhere, even mid-line or mid-UTF-8)
--           and :finish() (end of body). Complete events/lines only are
--           passed on; what is left at the end is reported to finish's caller.
-- JSON:     decode (never raises), encode (with raw() fragments kept byte
--           for byte), int (JSON number -> Lua integer), ints (deep).
-- Errors:   the one error vocabulary, status table and retry policy
--           (retryability, backoff, retry-after) of every llm.call.
-- Secrets:  the credentials a call sends, and their redaction.
-- Requests: base URL joining, stop lists, tool schemas, `extra` merging.
--
-- Pure Lua, no I/O.
local cjson = require "cjson"

local S = {}

S.null = cjson.null

--------------------------------------------------------------------------
-- framing
--------------------------------------------------------------------------

-- Splits buffered bytes into complete lines (LF, CRLF or a lone CR, as the
-- SSE spec allows). A CR at the very end of the buffer waits for the next
-- chunk, which may start with its LF. Returns the lines and the rest.
local function split_lines(buf, final)
  local lines, pos, n = {}, 1, #buf
  while pos <= n do
    local i = buf:find("[\r\n]", pos)
    if not i then break end
    if buf:byte(i) == 10 then -- LF
      lines[#lines + 1] = buf:sub(pos, i - 1)
      pos = i + 1
    elseif i < n then -- CR followed by something
      lines[#lines + 1] = buf:sub(pos, i - 1)
      pos = (buf:byte(i + 1) == 10) and i + 2 or i + 1
    elseif final then -- CR as the last byte of the body
      lines[#lines + 1] = buf:sub(pos, i - 1)
      pos = i + 1
    else
      break -- lone CR at the end: wait for the next chunk
    end
  end
  return lines, buf:sub(pos)
end

-- Appends a chunk to framer f's buffer and hands every complete line to
-- line(); a trailing CR waits for the next chunk (it may be half a CRLF).
local function feed_lines(f, chunk, line)
  if chunk == nil or chunk == "" then return end
  if not chunk:find("[\r\n]") and f.buf:byte(-1) ~= 13 then -- no line ends yet
    f.buf = f.buf .. chunk
    return
  end
  local lines
  lines, f.buf = split_lines(f.buf .. chunk, false)
  for _, l in ipairs(lines) do line(l) end
end

-- Server-sent events (https://html.spec.whatwg.org/#event-stream-interpretation).
-- on_event(name, data) for every event that has data; name defaults to
-- "message"; multiple data lines are joined with "\n"; comments dropped.
-- finish() passes on a last event that lacks its blank line when its data
-- is whole, else returns those bytes (a stream cut mid-event).
function S.sse(on_event)
  local f = {buf = "", event = nil, data = nil, seen = 0}
  local function dispatch()
    if f.data then
      f.seen = f.seen + 1
      -- an empty event type is the default one, as for no event: line
      local name, data = (f.event ~= nil and f.event ~= "") and f.event or "message", f.data
      f.event, f.data = nil, nil
      on_event(name, data)
    else
      f.event = nil
    end
  end
  local function line(l)
    if l == "" then return dispatch() end
    if l:byte(1) == 58 then return end -- ":" comment (keep-alive)
    local field, value = l:match("^([^:]*):(.*)$")
    if not field then field, value = l, "" end
    if value:byte(1) == 32 then value = value:sub(2) end
    if field == "data" then
      f.data = f.data and (f.data .. "\n" .. value) or value
    elseif field == "event" then
      f.event = value
    end -- id, retry: not used by LLM providers
  end
  function f:feed(chunk) feed_lines(self, chunk, line) end
  function f:finish()
    local lines, rest = split_lines(self.buf, true)
    self.buf = ""
    for _, l in ipairs(lines) do line(l) end
    if rest ~= "" then line(rest) end
    -- an event the body ended in without its blank line: passed on when
    -- it is whole (JSON or [DONE]), else it is what a cut stream left
    local pending = self.data
    if pending and (pending:match("^%s*%[DONE%]%s*$") or S.decode(pending) ~= nil) then
      dispatch()
      return nil
    end
    self.event, self.data = nil, nil
    return pending
  end
  return f
end

-- Newline-delimited JSON: on_line(text) for every non-blank line (CR
-- stripped). finish() passes on a last line that had no newline.
function S.ndjson(on_line)
  local f = {buf = "", seen = 0}
  local function line(l)
    if l:find("%S") then
      f.seen = f.seen + 1
      on_line(l)
    end
  end
  function f:feed(chunk) feed_lines(self, chunk, line) end
  function f:finish()
    local lines, rest = split_lines(self.buf, true)
    self.buf = ""
    for _, l in ipairs(lines) do line(l) end
    line(rest)
  end
  return f
end

-- Text received so far, kept as pieces (concatenating on every delta is
-- quadratic); p.text reads the concatenation.
function S.text_buffer(p)
  local pieces, cached = {}, nil
  setmetatable(p, {__index = function(_, k)
    if k == "text" then
      cached = cached or table.concat(pieces)
      return cached
    end
  end})
  return function(piece)
    pieces[#pieces + 1] = piece
    cached = nil
  end
end

--------------------------------------------------------------------------
-- JSON
--------------------------------------------------------------------------

-- Decodes without raising: value or nil, message.
function S.decode(s)
  if type(s) ~= "string" then return nil, "no body" end
  local ok, v = pcall(cjson.decode, s)
  if not ok then return nil, tostring(v) end
  return v
end

-- nil for JSON null (and for nil).
function S.val(v)
  if v == cjson.null then return nil end
  return v
end

-- v when it is a string, else nil: for the fields a response promises
-- as strings, whatever JSON value a server put there.
function S.str(v)
  if type(v) ~= "string" then return nil end
  return v
end

-- v when it is a table (a JSON object or array), else nil: for the parts
-- of a response an adapter indexes, which a server may send as anything.
function S.tbl(v)
  if type(v) ~= "table" then return nil end
  return v
end

-- A JSON number as a Lua integer (lua-cjson decodes every number as a
-- float); nil for null / absent / not a number.
function S.int(v)
  if type(v) ~= "number" then return nil end
  return math.tointeger(v) or v
end

-- A JSON number that is a whole number, as a Lua integer; nil for
-- anything else (an index or a status must not be 2.5, let alone NaN,
-- which cannot even be a table key).
function S.whole(v)
  v = S.int(S.val(v))
  if math.type(v) ~= "integer" then return nil end
  return v
end

-- What s:record_llm accepts (MS_TOKENS_MAX in telemetry/ms_trace.h).
S.TOKENS_MAX = 1000000000000

-- A token count from a provider as a Lua integer: nil for anything that
-- is not a whole number from 0 to S.TOKENS_MAX (null, absent, -3, 2.5,
-- 1e999), which callers then treat as not reported rather than recording
-- nonsense or failing the call over it.
function S.count(v)
  v = S.whole(v)
  if v == nil or v < 0 or v > S.TOKENS_MAX then return nil end
  return v
end

-- Deep copy turning integral floats into integers (tool arguments read
-- better as {count = 3} than {count = 3.0}). null stays cjson.null.
function S.ints(v)
  if type(v) == "number" then return math.tointeger(v) or v end
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = S.ints(x) end
  return t
end

local RAW = {}

-- A JSON fragment to embed as is (its text must be valid JSON). lua-cjson
-- cannot tell an empty array from an empty object, so anything that came
-- in as JSON (tool arguments, a schema given as a string) goes back out
-- byte for byte instead of through a Lua table.
function S.raw(json)
  return setmetatable({json = json}, RAW)
end

function S.is_raw(v)
  return type(v) == "table" and getmetatable(v) == RAW
end

-- Encodes v; raw() fragments are spliced in unchanged.
function S.encode(v)
  local raws = {}
  local nonce = tostring(math.random(1, 0x7fffffff))
  local function walk(x)
    if type(x) ~= "table" then return x end
    if getmetatable(x) == RAW then
      raws[#raws + 1] = x.json
      return "\1raw" .. nonce .. ":" .. #raws .. "\1"
    end
    local t = {}
    for k, y in pairs(x) do t[k] = walk(y) end
    return t
  end
  local out = cjson.encode(walk(v))
  if #raws == 0 then return out end
  return (out:gsub('"\\u0001raw' .. nonce .. ':(%d+)\\u0001"', function(i)
    return raws[tonumber(i)]
  end))
end

-- A tool call from a provider, checked: `arguments` as the provider gave
-- them decoded, else decoded from arguments_json. Arguments that are not
-- JSON text, not an object, or hold what JSON cannot carry back (NaN,
-- infinity) leave arguments nil and say why in arguments_error; id and
-- name are strings or nil.
function S.tool_call(id, name, arguments_json, arguments)
  local call = {id = S.str(id), name = S.str(name), arguments_json = S.str(arguments_json)}
  local why
  if arguments == nil then
    local src = call.arguments_json
    if src == nil and arguments_json ~= nil then
      why = "tool arguments are a " .. type(arguments_json) .. ", not JSON text"
    else
      if src == nil or src:match("^%s*$") then src = "{}" end
      local err
      arguments, err = S.decode(src)
      if arguments == nil then why = "tool arguments are not valid JSON: " .. tostring(err) end
    end
  end
  local ok, json = pcall(cjson.encode, arguments or {})
  if not why and type(arguments) ~= "table" then
    why = "tool arguments are not a JSON object"
  elseif not why and not ok then
    why = "tool arguments hold a number JSON cannot carry (NaN or infinity)"
  end
  if why then
    call.arguments_error = why
  else
    call.arguments = S.ints(arguments)
  end
  if call.arguments_json == nil then
    call.arguments_json = ok and json or "{}"
  end
  return call
end

-- The arguments of a normalised tool call as JSON text (the raw text when
-- we have it), and as a value to embed in a request body.
function S.arguments_json(call)
  if type(call.arguments_json) == "string" and S.decode(call.arguments_json) ~= nil then
    return call.arguments_json
  end
  if type(call.arguments) == "string" then -- already JSON text
    return call.arguments
  end
  return cjson.encode(call.arguments or {})
end

function S.arguments_value(call)
  return S.raw(S.arguments_json(call))
end

--------------------------------------------------------------------------
-- errors: one vocabulary, one status table, one retry policy
--------------------------------------------------------------------------

-- Every llm.call error has one of these types, whatever the provider
-- called it (the provider's own type and code are kept in provider_type
-- and code); true marks the ones worth retrying. README "Errors" lists
-- them, and a spec checks that it lists exactly these.
S.TYPES = {
  rate_limit_error = true, overloaded_error = true, server_error = true, timeout_error = true,
  connection_error = true, conflict_error = true, stream_truncated = true,
  invalid_request_error = false, authentication_error = false, permission_error = false,
  not_found_error = false, request_too_large = false, malformed_response = false,
  replay_miss = false, configuration_error = false, budget_exceeded = false,
}

-- The HTTP status decides the type when there is one: providers disagree
-- on names (OpenAI calls a 429 "tokens" or "requests"), never on statuses.
local STATUS_TYPES = {
  [400] = "invalid_request_error", [401] = "authentication_error", [403] = "permission_error",
  [404] = "not_found_error", [408] = "timeout_error", [409] = "conflict_error",
  [413] = "request_too_large", [422] = "invalid_request_error", [429] = "rate_limit_error",
  [503] = "overloaded_error", [504] = "timeout_error", [529] = "overloaded_error",
}

-- Our type for an HTTP status; nil for a 2xx (or no status).
function S.status_type(status)
  status = tonumber(status)
  if not status or (status >= 200 and status < 300) then return nil end
  return STATUS_TYPES[status] or (status >= 500 and status <= 599 and "server_error")
    or (status >= 400 and status <= 499 and "invalid_request_error") or "malformed_response"
end

-- 408, 409, 429 and every 5xx (529 included).
function S.retryable_status(status)
  return S.TYPES[S.status_type(status)] == true
end

-- Errors without a status (stream error events, an error object in a 2xx
-- body) are typed by what the provider called them: its type, else its
-- code. Anything else a server reports mid-answer is a server_error.
local PROVIDER_TYPES = {
  api_error = "server_error", server_error = "server_error", internal_server_error = "server_error",
  overloaded_error = "overloaded_error", service_unavailable = "overloaded_error",
  rate_limit_error = "rate_limit_error", rate_limit_exceeded = "rate_limit_error",
  requests = "rate_limit_error", tokens = "rate_limit_error", insufficient_quota = "rate_limit_error",
  invalid_request_error = "invalid_request_error", context_length_exceeded = "invalid_request_error",
  authentication_error = "authentication_error", invalid_api_key = "authentication_error",
  permission_error = "permission_error", not_found_error = "not_found_error",
  model_not_found = "not_found_error", request_too_large = "request_too_large",
  timeout_error = "timeout_error",
}

local function provider_type(t, code)
  return PROVIDER_TYPES[string.lower(tostring(t or ""))] or PROVIDER_TYPES[string.lower(tostring(code or ""))]
end

-- How long to wait before retry number `attempt` (1-based): exponential
-- backoff capped at cap_ms, with full jitter (uniform in [0, that]) so
-- clients that failed together do not retry in step. retry() and llm.call
-- both wait by this.
function S.backoff_ms(base_ms, cap_ms, attempt)
  return math.random() * math.min(cap_ms, base_ms * 2 ^ (attempt - 1))
end

-- Milliseconds to wait from retry-after-ms (wins) or retry-after (seconds;
-- an HTTP date is ignored). nil when neither is usable.
function S.retry_after_ms(headers)
  if type(headers) ~= "table" then return nil end
  local function get(name)
    local v = headers[name]
    if v == nil then
      for k, x in pairs(headers) do
        if type(k) == "string" and k:lower() == name then v = x break end
      end
    end
    if type(v) == "table" then v = v[1] end
    return v ~= nil and tostring(v):match("^%s*(.-)%s*$") or nil
  end
  local ms = tonumber(get("retry-after-ms") or "")
  if ms and ms >= 0 and ms == ms and ms < math.huge then return math.ceil(ms) end
  local s = tonumber(get("retry-after") or "")
  if s and s >= 0 and s == s and s < math.huge then return math.ceil(s * 1000) end
  return nil
end

local error_mt = {
  __name = "moonspan.llm.error",
  __tostring = function(e)
    -- a call refused before sending reads as error(msg, level) would have
    if e.where then return e.where .. tostring(e.message) end
    return string.format("llm error from %s: %s%s: %s", e.provider or "?", e.type or "error",
      e.status and (" (HTTP " .. e.status .. ")") or "", tostring(e.message or ""))
  end,
}

function S.is_error(v)
  return getmetatable(v) == error_mt
end

local function snippet(body)
  body = tostring(body or "")
  body = body:gsub("%s+", " ")
  if #body > 200 then body = body:sub(1, 200) .. "..." end
  return body
end
S.snippet = snippet

-- The error table raised to scripts; tostring gives one line.
--   fields: type (ours, when the caller knows it), provider_type and code
--   (the provider's), status, message, retryable (derived when nil),
--   retry_after_ms, where (the caller's "file:line: " for a refused call)
function S.error(provider, fields)
  local e = {
    provider = provider, status = fields.status, message = S.str(fields.message),
    provider_type = fields.provider_type, code = fields.code,
    retry_after_ms = fields.retry_after_ms, where = fields.where,
    type = S.str(fields.type) or S.status_type(fields.status)
      or provider_type(fields.provider_type, fields.code) or "server_error",
  }
  e.retryable = fields.retryable
  if e.retryable == nil then e.retryable = S.TYPES[e.type] == true end
  if e.message == nil or e.message == "" then
    e.message = e.status and ("HTTP " .. e.status) or e.type
  end
  return setmetatable(e, error_mt)
end

-- Raises the error for a non-2xx response. `found` is what the adapter
-- read from the body: {type =, message =, code =} or nil when the body had
-- no error object (an HTML page from a proxy, an empty body).
function S.raise_http(provider, res, found)
  local status = tonumber(res.status)
  local f = found or {}
  local msg = f.message
  if msg == nil or msg == "" then
    local body = snippet(res.body)
    msg = "HTTP " .. tostring(status) .. (body ~= "" and (": " .. body) or "")
  end
  error(S.error(provider, {provider_type = f.type, status = status, message = msg, code = f.code,
                           retry_after_ms = S.retry_after_ms(res.headers)}), 0)
end

-- Raises malformed_response (a 2xx body that is not what we expected).
function S.raise_malformed(provider, res, why)
  error(S.error(provider, {type = "malformed_response", status = tonumber(res and res.status) or 200,
                           retryable = false,
                           message = (why or "response is not the expected JSON")
                             .. (res and res.body and (": " .. snippet(res.body)) or "")}), 0)
end

-- Raises stream_truncated: the body ended before the provider's end marker.
function S.raise_truncated(provider, what)
  error(S.error(provider, {type = "stream_truncated", message = "stream ended before " .. what}), 0)
end

-- Raises invalid_request_error for a request the adapter cannot build
-- (where = "": refused before sending; llm.call fills in the caller's line).
function S.raise_invalid(message)
  error(S.error(nil, {type = "invalid_request_error", message = message, where = ""}), 0)
end

-- True for a 2xx (or unknown) status.
function S.ok_status(status)
  status = tonumber(status)
  return status == nil or (status >= 200 and status < 300)
end

--------------------------------------------------------------------------
-- secrets
--------------------------------------------------------------------------

-- Header names whose values are credentials: Authorization and its proxy
-- form, cookies, and anything named like a key, token, secret or password
-- (x-api-key, api-key, x-goog-api-key, helicone-auth, cf-aig-authorization, ...).
local SECRET_NAMES = {"auth", "key", "token", "secret", "cookie", "passw", "credential", "session"}

local function secret_header(name)
  name = string.lower(tostring(name))
  for _, w in ipairs(SECRET_NAMES) do
    if name:find(w, 1, true) then return true end
  end
  return false
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
  return (s:gsub("..?.?", function(c)
    local a, b, d = c:byte(1, 3)
    local n = a * 65536 + (b or 0) * 256 + (d or 0)
    local out = {}
    for i = 1, 4 do
      local k = (n >> (6 * (4 - i))) & 63
      out[i] = B64:sub(k + 1, k + 1)
    end
    if not b then out[3], out[4] = "=", "=" elseif not d then out[4] = "=" end
    return table.concat(out)
  end))
end

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- A URL's authority (what follows "scheme://", or the start when there is
-- no scheme, up to the path) and what comes before and after it.
local function authority(url)
  url = tostring(url or "")
  local scheme, rest = url:match("^(%a[%w+.-]*://)(.*)$")
  if not scheme then scheme, rest = "", url end
  local auth, tail = rest:match("^([^/?#]*)(.*)$")
  return scheme, auth, tail
end

-- The userinfo ("user:password") of a URL, or nil.
function S.userinfo(url)
  local _, auth = authority(url)
  return auth:match("^(.*)@")
end

-- The URL's host[:port], without the userinfo.
function S.host(url)
  local _, auth = authority(url)
  return (auth:gsub("^.*@", ""))
end

-- The URL without its userinfo, to name it in a message.
function S.without_userinfo(url)
  local scheme, auth, tail = authority(url)
  return scheme .. auth:gsub("^.*@", "") .. tail
end

local function add_secret(list, v)
  if type(v) == "string" and #v >= 4 then list[#list + 1] = v end
end

-- Every credential a call sends, in the forms a server could echo it: the
-- API key, credential-named header values (and the token after "Bearer "),
-- and the URL's userinfo, raw, decoded, and as the Basic auth value curl
-- makes of it. Longest first, so a secret is never half-replaced by one
-- of its own parts.
function S.secrets(key, headers, url)
  local list = {}
  add_secret(list, key)
  for name, v in pairs(headers or {}) do
    if secret_header(name) then
      v = tostring(v)
      add_secret(list, v)
      add_secret(list, v:match("^%a+%s+(.+)$"))
    end
  end
  local info = S.userinfo(url)
  if info then
    local user, pass = info:match("^([^:]*):(.*)$")
    add_secret(list, info)
    add_secret(list, pass)
    local decoded = unescape(info)
    add_secret(list, decoded)
    add_secret(list, pass and unescape(pass))
    -- what curl sends: user:password, or user: for a URL with no password
    add_secret(list, base64(user and (unescape(user) .. ":" .. unescape(pass)) or (decoded .. ":")))
  end
  table.sort(list, function(a, b) return #a > #b end)
  return list
end

-- Replaces every secret in text, and anything key-shaped (sk-... long
-- enough to be a real key, a Bearer or Basic credential), with
-- [redacted]. A provider's own masked form ("sk-abc***1234") is kept.
function S.redact(text, secrets)
  if type(text) ~= "string" then return text end
  for _, s in ipairs(secrets or {}) do
    local i = text:find(s, 1, true)
    while i do
      text = text:sub(1, i - 1) .. "[redacted]" .. text:sub(i + #s)
      i = text:find(s, i + 10, true)
    end
  end
  text = text:gsub("sk%-[%w_%-]+", function(k)
    if #k >= 20 then return "sk-[redacted]" end
  end)
  -- (a credential is long; "Basic plan" is prose)
  text = text:gsub("([Bb]earer%s+)([%w%._~%+/%-]+=*)", function(pre, tok)
    if #tok >= 8 then return pre .. "[redacted]" end
  end)
  text = text:gsub("([Bb]asic%s+)([%w%+/]+=*)", function(pre, tok)
    if #tok >= 8 then return pre .. "[redacted]" end
  end)
  return text
end

-- Redacts every string field of an error table in place (a careless
-- gateway may echo credentials in its message, type or code) and returns it.
function S.redact_error(err, secrets)
  for k, v in pairs(err) do
    if type(v) == "string" then err[k] = S.redact(v, secrets) end
  end
  return err
end

--------------------------------------------------------------------------
-- requests
--------------------------------------------------------------------------

-- base without trailing slashes, followed by `path`; when base already ends
-- with `prefix` (e.g. "/v1"), the prefix is not repeated.
function S.join_url(base, prefix, path)
  base = tostring(base):gsub("/+$", "")
  if prefix and base:sub(-#prefix) == prefix then
    base = base:sub(1, #base - #prefix)
  end
  return base .. (prefix or "") .. path
end

-- stop: a string or a list -> a non-empty list, or nil.
function S.stop_list(stop)
  if stop == nil then return nil end
  if type(stop) == "string" then return {stop} end
  if type(stop) == "table" and #stop > 0 then
    local t = {}
    for i, s in ipairs(stop) do t[i] = s end
    return t
  end
  return nil
end

-- Keys of a JSON schema that must be arrays; an empty Lua table would be
-- encoded as {} and rejected, so an empty one is dropped (for `required`
-- that means the same thing).
local SCHEMA_ARRAYS = {required = true, enum = true, anyOf = true, oneOf = true, allOf = true,
                       prefixItems = true, examples = true}

local function clean_schema(v)
  if type(v) ~= "table" or S.is_raw(v) then return v end
  local t = {}
  for k, x in pairs(v) do
    if SCHEMA_ARRAYS[k] and type(x) == "table" and next(x) == nil then
      -- dropped: see above
    else
      t[k] = clean_schema(x)
    end
  end
  return t
end

-- A tool's parameters as a JSON schema value: a table (cleaned), JSON text
-- (embedded as is), or the empty object schema when absent.
function S.schema(params)
  -- (lua-cjson encodes an empty table as {}, which is what properties needs)
  if params == nil then return {type = "object", properties = {}} end
  if type(params) == "string" then
    if S.decode(params) == nil then
      S.raise_invalid("llm.call: tool parameters given as a string must be a JSON schema")
    end
    return S.raw(params)
  end
  if type(params) ~= "table" then
    S.raise_invalid("llm.call: tool parameters must be a JSON schema table")
  end
  return clean_schema(params)
end

-- Checks req.tools: a list of {name =, description =, parameters =}.
function S.check_tools(tools)
  if tools == nil then return nil end
  if type(tools) ~= "table" then
    S.raise_invalid("llm.call: tools must be a list of {name =, description =, parameters =}")
  end
  if #tools == 0 then return nil end
  for i, t in ipairs(tools) do
    if type(t) ~= "table" or type(t.name) ~= "string" or t.name == "" then
      S.raise_invalid(string.format("llm.call: tools[%d] needs a name (a string)", i))
    end
  end
  return tools
end

local function is_list(t)
  return type(t) == "table" and (#t > 0 or next(t) == nil)
end

-- Merges req.extra into body: extra wins; two objects under the same key
-- (e.g. Ollama's options) are merged one level deep.
function S.merge(body, extra)
  if extra == nil then return body end
  if type(extra) ~= "table" then S.raise_invalid("llm.call: extra must be a table merged into the request body") end
  for k, v in pairs(extra) do
    local cur = body[k]
    if type(cur) == "table" and type(v) == "table" and not is_list(cur) and not is_list(v)
       and not S.is_raw(cur) and not S.is_raw(v) then
      for k2, v2 in pairs(v) do cur[k2] = v2 end
    else
      body[k] = v
    end
  end
  return body
end

-- Request headers: content-type, then the adapter's, then opts.headers and
-- opts.traceparent from the caller.
function S.headers(opts, own)
  local h = {["content-type"] = "application/json"}
  for k, v in pairs(own or {}) do h[k] = v end
  if type(opts.headers) == "table" then
    for k, v in pairs(opts.headers) do h[tostring(k):lower()] = v end
  end
  if opts.traceparent then h.traceparent = opts.traceparent end
  return h
end

-- The key to send: nil when absent or "" (local servers).
function S.key(opts)
  local k = opts and opts.key
  if type(k) ~= "string" or k == "" then return nil end
  return k
end

-- Tools in the OpenAI "function" shape, which Ollama uses as well.
function S.function_tools(tools)
  if not S.check_tools(tools) then return nil end
  local out = {}
  for i, t in ipairs(tools) do
    out[i] = {type = "function", ["function"] = {name = t.name, description = t.description,
                                                 parameters = S.schema(t.parameters)}}
  end
  return out
end

return S
