-- llm.call{model=, messages=, system=, max_tokens=, temperature=, provider=}
--
-- One call is one span of kind `llm` ("chat <model>", following the
-- OpenTelemetry GenAI conventions) recording provider, model, tokens,
-- cost, retries, backoff and time to first token; the span opens first,
-- so a call refused before sending is recorded too. Providers are adapters
-- in scripts/providers/: pure build/parse/stream for the HTTP ones, send()
-- for the mock. Retries, accounting, redaction of the call's credentials
-- and the span live here, once for all of them; the error vocabulary and
-- the retry policy in wire.lua.

local llm = {}

local cjson = require "cjson"
local sched = require "moonspan.sched"
local S = require "moonspan.wire"
local capture = require "moonspan.capture"
local budget = require "moonspan.budget"

-- Defaults like the official SDKs: 2 retries, 0.5 s initial backoff, 8 s
-- cap; a server's retry-after is honoured up to 60 s. Change them here for
-- every call, or per call with the same names. budget_usd (none by
-- default) caps what one call may spend (budget.lua).
llm.defaults = {
  retries = 2, backoff_ms = 500, max_backoff_ms = 8000, max_retry_after_ms = 60000,
  connect_timeout_ms = 10000, timeout_ms = 600000,
  capture_max_bytes = capture.MAX_BYTES, -- per captured attribute (--capture-content)
}

local call -- llm.call, defined last

-- "file:line" of the code that called llm.call, or with past_library of
-- the first code above it that is not this library (a suite's line, not
-- the scorer's that made the call); nil when that is not Lua (pcall).
local function caller(past_library)
  local level = 2
  repeat
    local info = debug.getinfo(level, "f")
    if not info then return nil end
    level = level + 1
  until info.func == call
  for l = level, level + 30 do
    local info = debug.getinfo(l, "Sl")
    if not info then return nil end
    if not past_library or (info.currentline > 0 and not info.source:match("^@scripts/")) then
      return info.currentline > 0 and (info.short_src .. ":" .. info.currentline) or nil
    end
  end
end

-- The "file:line: " that error(msg, 2) would have put before a message.
local function where()
  local at = caller()
  return at and (at .. ": ") or ""
end

-- Raises the error of a call that cannot be made (bad arguments:
-- invalid_request_error; no key, no provider: configuration_error). It
-- is recorded on the call's span like any other and reads, as text, as
-- the caller's line and the message.
local function refuse(type, message, provider)
  error(S.error(provider, {type = type, message = message, where = where()}), 0)
end

-- Rough count for providers that report no usage: about 4 bytes a token.
-- Marked estimated wherever it is used, never passed off as exact.
function llm.estimate_tokens(text)
  return math.ceil(#(text or "") / 4)
end

local function request_text(req)
  local parts = {req.system or ""}
  for _, m in ipairs(req.messages) do
    parts[#parts + 1] = type(m.content) == "string" and m.content or ""
  end
  return table.concat(parts, "\n")
end

local adapters = {}
local PROVIDERS = "mock, anthropic, openai, ollama"

local function adapter_for(name)
  if adapters[name] then return adapters[name] end
  if type(name) ~= "string" then
    refuse("invalid_request_error", string.format("llm.call: provider must be a string (%s), got a %s",
      PROVIDERS, type(name)))
  end
  local ok, mod = pcall(require, "moonspan.providers." .. name)
  if not ok then
    if tostring(mod):find("module 'moonspan.providers." .. name .. "' not found", 1, true) then
      refuse("configuration_error", string.format("llm.call: unknown provider '%s'; available: %s", name, PROVIDERS))
    end
    error(mod, 0)
  end
  adapters[name] = mod
  return mod
end

-- provider= on the call, else the model name, else $MOONSPAN_PROVIDER.
local function choose_provider(req)
  if req.provider then return req.provider end
  local m = req.model
  if m == "mock" or m:match("^mock[-:]") then return "mock" end
  if m:match("^claude%-") then return "anthropic" end
  if m:match("^gpt%-") or m:match("^o%d") or m:match("^chatgpt%-") then return "openai" end
  if m:match("^[%w._/-]+:[%w._-]+$") then return "ollama" end
  local env = os.getenv("MOONSPAN_PROVIDER")
  if env and env ~= "" then return env end
  refuse("configuration_error", string.format("llm.call: cannot tell the provider of model '%s' from its "
    .. "name; pass provider = \"...\" (%s) or set MOONSPAN_PROVIDER", m, PROVIDERS))
end

-- Where an HTTP adapter sends, and with which key: the call's base_url /
-- api_key, else the provider's environment variables. A missing key is an
-- error before anything is sent; the key itself never appears in one.
local function endpoint(adapter, req)
  local env = adapter.env or {}
  local base = req.base_url or (env.base and os.getenv(env.base)) or env.default_base
  if base == "" then base = env.default_base end
  if adapter.base_url then base = adapter.base_url(base) end
  if type(base) ~= "string" or not base:match("^[Hh][Tt][Tt][Pp][Ss]?://") then
    refuse("configuration_error", string.format("llm.call: the base URL of provider '%s' must start "
      .. "with http:// or https://, got '%s' (from %s)", adapter.name, S.without_userinfo(tostring(base)),
      req.base_url and "base_url" or env.base or "the default"), adapter.name)
  end
  base = base:gsub("/+$", "")
  local key = req.api_key
  if key == nil and env.key then key = os.getenv(env.key) end
  if adapter.needs_key and (key == nil or key == "") and req.api_key == nil then
    refuse("configuration_error", string.format("llm.call: no API key for provider '%s': set %s, or "
      .. "pass api_key = ... (api_key = \"\" for a server that needs none)", adapter.name,
      env.key or "its key"), adapter.name)
  end
  return base, key
end

local function check(req)
  if type(req) ~= "table" then
    refuse("invalid_request_error", "llm.call: expected a table, e.g. llm.call{model = \"mock\", "
      .. "messages = {{role = \"user\", content = \"hi\"}}}")
  end
  if type(req.model) ~= "string" or req.model == "" then
    refuse("invalid_request_error", "llm.call: model is required (a string), e.g. model = \"mock\"")
  end
  if type(req.messages) ~= "table" or #req.messages == 0 then
    refuse("invalid_request_error", "llm.call: messages must be a non-empty list of {role = ..., content = ...}")
  end
  for i, m in ipairs(req.messages) do
    if type(m) ~= "table" or type(m.role) ~= "string" then
      refuse("invalid_request_error",
        string.format("llm.call: messages[%d] needs a role (\"user\", \"assistant\", ...)", i))
    end
  end
  local retries = req.retries or llm.defaults.retries
  if math.type(retries) ~= "integer" or retries < 0 then
    refuse("invalid_request_error", "llm.call: retries must be an integer >= 0, got " .. tostring(req.retries))
  end
  if req.headers ~= nil and type(req.headers) ~= "table" then
    refuse("invalid_request_error", "llm.call: headers must be a table of name = value")
  end
  return retries
end

-- Wait before the next attempt: the server's retry-after when it gave one
-- (within the cap), else the shared backoff with full jitter.
local function wait_ms(req, attempt, err)
  if err.retry_after_ms then
    return math.min(err.retry_after_ms, req.max_retry_after_ms or llm.defaults.max_retry_after_ms)
  end
  return S.backoff_ms(req.backoff_ms or llm.defaults.backoff_ms,
                      req.max_backoff_ms or llm.defaults.max_backoff_ms, attempt)
end

-- Every credential this call sends (the key, credential headers, URL
-- userinfo): what an error, partial text or recording must not keep.
local function secrets_of(c)
  c.secrets = c.secrets or S.secrets(c.key, c.req.headers, c.base)
  return c.secrets
end

-- Whether an attempt's error is one of ours: an adapter's, or a transport
-- error from the host (typed in our vocabulary). Anything else (the
-- host's interrupt, a mock reply function's own error) is not ours to
-- change: it passes unchanged, the very same value.
local function ours(err)
  return type(err) == "table" and (S.is_error(err) or S.TYPES[err.type] ~= nil)
end

-- The error an attempt raised, as the table scripts branch on.
local function normalise_error(err, provider)
  if not S.is_error(err) then
    local partial = err.partial_text
    err = S.error(provider, err) -- a transport error from the host
    err.partial_text = partial
  end
  err.provider = err.provider or provider
  return err
end

local function record_usage(s, req, provider, resp)
  local u = resp.usage
  if not u then -- the provider said nothing: estimate, and say so
    u = {}
    resp.usage = u
  end
  -- a count the provider left out is estimated, never taken as 0
  if u.input_tokens == nil then
    u.input_tokens = llm.estimate_tokens(request_text(req))
    u.estimated = true
  end
  if u.output_tokens == nil then
    u.output_tokens = llm.estimate_tokens(resp.text)
    u.estimated = true
  end
  u.cache_read_tokens = u.cache_read_tokens or 0
  u.cache_write_tokens = u.cache_write_tokens or 0
  u.estimated = u.estimated or false
  local usage = {
    provider = provider, model = resp.model or req.model,
    input_tokens = u.input_tokens, output_tokens = u.output_tokens,
    cache_read_tokens = u.cache_read_tokens, cache_write_tokens = u.cache_write_tokens,
    estimated = u.estimated, cost_usd = resp.cost_usd, ttft_ms = resp.ttft_ms,
  }
  local cost = s:record_llm(usage)
  if cost == nil and usage.model ~= req.model then
    -- a server answering with a dated id ("my-model-2024-08-06") that has
    -- no price of its own is priced as the model that was asked for
    usage.cost_usd = moonspan.cost(req.model, u)
    if usage.cost_usd then cost = s:record_llm(usage) end
  end
  return cost
end

-- Marks an on_token callback's own error so it is raised unchanged, not
-- wrapped or retried.
local USER_ABORT = setmetatable({}, {__name = "moonspan.llm.user_abort"})

-- One attempt against an HTTP provider: send the request (built on the
-- first attempt, reused by the others; the scheduler yields here inside
-- parallel/llm.map), parse the response or the stream. Raises error
-- tables for the retry loop to judge. c is the call: req, adapter, base,
-- key, stream.
local function http_send(c)
  local req, adapter, built = c.req, c.adapter, c.built
  if not built then
    built = adapter.build(req, {base = c.base, key = c.key, stream = c.stream})
    local headers = built.headers or {}
    for k, v in pairs(req.headers or {}) do headers[k] = v end -- e.g. for a gateway
    headers.traceparent = moonspan.traceparent()
    built.headers = headers
    built.connect_timeout_ms = req.connect_timeout_ms or llm.defaults.connect_timeout_ms
    built.timeout_ms = req.timeout_ms or llm.defaults.timeout_ms
    c.built = built
  end
  local parser, ttft, user_err
  if c.stream then
    local start = moonspan.now_ms()
    parser = adapter.stream(function(piece)
      ttft = ttft or (moonspan.now_ms() - start)
      if req.on_token then
        local ok, e = pcall(req.on_token, piece)
        if not ok then user_err = e; error(USER_ABORT, 0) end
      end
    end)
    built.on_chunk = function(chunk) parser:feed(chunk) end
  end
  local ok, res = pcall(sched.http, built)
  if not ok then
    if user_err ~= nil then error({user_error = user_err}, 0) end
    if not ours(res) then error(res, 0) end
    if parser and res.type == "connection_error" and (res.received_bytes or 0) > 0 then
      res.type = "stream_truncated" -- the connection broke mid-answer
    end
    if parser and parser.text ~= "" then
      -- tokens already reached the caller: keep them, and do not retry
      res.partial_text = parser.text
      res.retryable = false
    end
    error(res, 0)
  end
  if res.status >= 300 or not parser then
    return adapter.parse(res) -- raises the provider's error for a failed status
  end
  local resp = parser:finish()
  resp.ttft_ms = ttft
  return resp
end

-- --- record and replay (moonspan eval --record / --replay) -------------
--
-- A request is keyed by the SHA-256 of its canonical JSON: the fields that
-- decide the answer, object keys sorted, so the same request always hashes
-- the same. The eval runner sets llm.record_run / llm.replay_run, and
-- under --replay llm.replay_miss ("fail", "live" or "record": what a
-- request with no recorded answer does) and llm.replay_counts
-- ({replayed =, missed =, live =}, counted here).
--
-- A recording keeps the call's latency (latency_ms, retries and backoff
-- included), so a replayed case can be timed as it would have run: each
-- replayed call adds its recorded latency and its replay time to
-- llm.replay_timing[trace id], which the runner takes with
-- llm.take_replay_timing.

local function canonical(v, out)
  local t = type(v)
  if t == "table" then
    if #v > 0 or next(v) == nil then
      out[#out + 1] = "["
      for i, x in ipairs(v) do
        if i > 1 then out[#out + 1] = "," end
        canonical(x, out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) == "string" and type(v[k]) ~= "function" then keys[#keys + 1] = k end
      end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = cjson.encode(k) .. ":"
        canonical(v[k], out)
      end
      out[#out + 1] = "}"
    end
  elseif t == "string" or t == "number" or t == "boolean" then
    out[#out + 1] = cjson.encode(v)
  else
    out[#out + 1] = "null"
  end
  return out
end

local function request_key(provider, req)
  local json = table.concat(canonical({
    provider = provider, model = req.model, system = req.system, messages = req.messages,
    max_tokens = req.max_tokens, temperature = req.temperature, tools = req.tools,
    stop = req.stop, extra = req.extra, mock = req.mock,
  }, {}))
  return moonspan.sha256(json), json
end

local RECORDED_FIELDS = {"text", "model", "finish_reason", "usage", "tool_calls", "cost_usd", "timings",
                         "latency_ms"}

local function record(c, resp)
  local hash, json = request_key(c.provider, c.req)
  local kept = {}
  for _, k in ipairs(RECORDED_FIELDS) do kept[k] = resp[k] end
  local secrets = secrets_of(c)
  moonspan.eval_store.record(llm.record_run, hash, S.redact(json, secrets),
                             S.redact(cjson.encode(kept), secrets), caller(true) or "?")
end

local function count(what)
  local c = llm.replay_counts
  if c then c[what] = (c[what] or 0) + 1 end
end

-- Per trace id: {calls =, replay_ms =, recorded_ms =, unknown =} of the
-- replayed calls made in it (unknown: recorded without their latency, by
-- a moonspan before recordings kept it).
llm.replay_timing = {}

-- Returns and forgets the replay timing of a trace (nil when none of its
-- calls was replayed).
function llm.take_replay_timing(trace_id)
  local t = trace_id and llm.replay_timing[trace_id]
  if trace_id then llm.replay_timing[trace_id] = nil end
  return t
end

local function add_timing(s, replay_ms, recorded_ms)
  local ok, tid = pcall(function() return s.trace_id end)
  if not ok or not tid then return end
  local t = llm.replay_timing[tid]
  if not t then
    t = {calls = 0, replay_ms = 0, recorded_ms = 0, unknown = 0}
    llm.replay_timing[tid] = t
  end
  t.calls = t.calls + 1
  t.replay_ms = t.replay_ms + replay_ms
  if type(recorded_ms) == "number" then
    t.recorded_ms = t.recorded_ms + recorded_ms
  else
    t.unknown = t.unknown + 1
  end
end

-- The recorded answer to call c as {resp, json}, or nil on a miss that
-- goes live (--replay-miss live|record). A miss under --replay-miss fail
-- raises replay_miss, naming the call site.
local function replayed(c)
  local hash = request_key(c.provider, c.req)
  local json = moonspan.eval_store.replay(llm.replay_run, hash)
  if not json then
    count("missed")
    local mode = llm.replay_miss or "fail"
    if mode ~= "fail" then
      count("live")
      return nil
    end
    error(S.error(c.provider, {type = "replay_miss", retryable = false, message = string.format(
      "llm.call at %s: eval run %d recorded no answer for this request (it changed since, or "
      .. "was never made); run the suite again with --record, or let such calls go to the provider "
      .. "with --replay-miss live (or record)", caller(true) or "?", llm.replay_run)}), 0)
  end
  count("replayed")
  local resp = cjson.decode(json)
  resp.replayed = true
  return resp, json
end

-- Answers call c from the recording; nil when it has no answer and the
-- call is to go live. Under --replay-miss record the recorded answer is
-- copied into this run's recordings, so that this run replays whole.
local function replay(c, s, t0)
  local resp, json = replayed(c)
  if not resp then return nil end
  local provider, req = c.provider, c.req
  s:set("llm.replayed", true)
  local u = resp.usage or {}
  s:record_llm{provider = provider, model = resp.model or req.model, replayed = true,
               input_tokens = u.input_tokens, output_tokens = u.output_tokens,
               cache_read_tokens = u.cache_read_tokens, cache_write_tokens = u.cache_write_tokens,
               estimated = u.estimated, cost_usd = resp.cost_usd}
  local recorded_ms = type(resp.latency_ms) == "number" and resp.latency_ms or nil
  if recorded_ms then s:set("llm.recorded_latency_ms", recorded_ms) end
  if llm.record_run then
    local hash, req_json = request_key(provider, req)
    moonspan.eval_store.record(llm.record_run, hash, S.redact(req_json, secrets_of(c)), json, caller(true) or "?")
  end
  resp.retries, resp.provider = 0, provider
  resp.recorded_latency_ms = recorded_ms
  resp.latency_ms = moonspan.now_ms() - t0
  add_timing(s, resp.latency_ms, recorded_ms)
  return resp
end

-- A failed attempt: typed, stripped of the call's credentials, recorded as
-- an attempt_failed event. Returns the error and, unless it is the last
-- attempt, how long to wait before the next one.
local function attempt_failed(c, s, attempt, err)
  if not ours(err) then return err, nil end -- raised unchanged
  err = normalise_error(err, c.provider)
  S.redact_error(err, secrets_of(c))
  if err.where == "" then err.where = where() end -- refused before sending
  local wait
  if attempt <= c.retries and err.retryable then wait = wait_ms(c.req, attempt, err) end
  s:event("attempt_failed", {attempt = attempt, status = err.status, type = err.type,
                             provider_type = err.provider_type, code = err.code,
                             retryable = err.retryable, wait_ms = wait or 0})
  return err, wait
end

-- The body of the call's span: everything from checking the request to
-- the last attempt happens inside it, so a call refused before sending is
-- a failed span too.
local function run_call(s, req)
  local retries = check(req)
  local captured = capture.wanted(req, refuse)
  s:set("gen_ai.operation.name", "chat")
  s:set("gen_ai.request.model", req.model)
  local provider = choose_provider(req)
  local adapter = adapter_for(provider)
  s:set("gen_ai.system", provider)
  if req.max_tokens then s:set("gen_ai.request.max_tokens", req.max_tokens) end
  if req.temperature then s:set("gen_ai.request.temperature", req.temperature) end
  local base, key
  if adapter.build then
    base, key = endpoint(adapter, req)
    s:set("server.address", S.host(base))
  end
  if captured then capture.input(s, req, llm.defaults.capture_max_bytes) end
  local t0 = moonspan.now_ms()
  local c = {req = req, adapter = adapter, provider = provider, base = base, key = key,
             retries = retries, stream = req.stream or req.on_token ~= nil}
  if llm.replay_run then
    local resp = replay(c, s, t0)
    if resp then
      if captured then capture.output(s, resp, llm.defaults.capture_max_bytes) end
      return resp
    end
    -- no recording, and --replay-miss lets it go to the provider: live spend
    s:set("llm.replay_miss", llm.replay_miss)
  end
  -- budgets (budget.lua): each attempt is admitted before it is sent
  local guard <close> = budget.guard(llm, c, s, refuse)
  local function stopped(err, attempt, waited)
    s:record_llm{provider = provider, model = req.model}
    if attempt > 1 then s:add_retries(attempt - 1, false, waited) end
    err.provider, err.where = provider, where()
    error(err, 0)
  end
  if guard then
    local stop = guard:admit(req.model)
    if stop then stopped(stop, 1, 0) end
  end
  local waited = 0 -- ms spent in backoff, stored with the retries
  for attempt = 1, retries + 1 do
    local ok, resp
    if adapter.build then
      ok, resp = pcall(http_send, c)
    else
      ok, resp = pcall(adapter.send, req, attempt)
    end
    if ok then
      resp.cost_usd = record_usage(s, req, provider, resp)
      if guard then guard:settle(resp.cost_usd) end
      if attempt > 1 then s:add_retries(attempt - 1, true, waited) end
      resp.retries = attempt - 1
      resp.latency_ms = moonspan.now_ms() - t0
      resp.provider = provider
      resp.model = resp.model or req.model
      if resp.finish_reason then s:set("gen_ai.response.finish_reasons", resp.finish_reason) end
      if captured then capture.output(s, resp, llm.defaults.capture_max_bytes) end
      if llm.record_run then record(c, resp) end
      return resp
    end
    if guard then guard:failed(resp) end
    local err, wait = attempt_failed(c, s, attempt, resp)
    if not wait then
      s:record_llm{provider = provider, model = req.model}
      if attempt > 1 then s:add_retries(attempt - 1, false, waited) end
      if type(err) == "table" and err.user_error ~= nil then
        error(err.user_error, 0) -- the on_token callback's own error, unchanged
      end
      if type(err) == "table" and err.partial_text then s:set("llm.partial_text", err.partial_text) end
      error(err, 0)
    end
    if guard then -- before waiting: a retry that cannot be paid for is not waited for
      local stop = guard:admit(req.model, string.format("attempt %d failed (%s)", attempt, err.type))
      if stop then stopped(stop, attempt, waited) end
    end
    local w0 = moonspan.now_ms()
    sched.sleep(wait)
    waited = waited + (moonspan.now_ms() - w0)
  end
end

function call(req)
  local model = type(req) == "table" and req.model
  -- in parentheses: not a tail call, so the caller's frame stays findable
  -- for an error's position
  return (span((type(model) == "string" and model ~= "") and ("chat " .. model) or "chat", run_call, req))
end
llm.call = call

-- llm.map(requests, {concurrency = N}) — runs llm.call for every request,
-- at most N at a time (default 8), concurrently on one thread. Returns the
-- responses in request order and, when any call failed, a table of errors
-- by index (that response is then nil).
function llm.map(requests, opts)
  if type(requests) ~= "table" then
    error("llm.map: expected a list of llm.call requests", 2)
  end
  opts = opts or {}
  local n = opts.concurrency or 8
  if math.type(n) ~= "integer" or n < 1 then
    error("llm.map: concurrency must be an integer >= 1, got " .. tostring(opts.concurrency), 2)
  end
  local responses, errors, next_i = {}, nil, 1
  local function worker()
    while next_i <= #requests do
      local i = next_i
      next_i = next_i + 1
      local ok, resp = pcall(llm.call, requests[i])
      if ok then
        responses[i] = resp
      else
        errors = errors or {}
        errors[i] = resp
      end
    end
  end
  local workers = {}
  for w = 1, math.min(n, #requests) do workers[w] = worker end
  for _, r in ipairs(sched.run(workers)) do
    if not r[1] then error(r[2], 0) end -- a bug in the worker itself, not a call's error
  end
  return responses, errors
end

return llm
