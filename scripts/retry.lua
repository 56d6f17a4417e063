-- retry{attempts = 3, backoff_ms = 200, fn} — runs fn until it succeeds,
-- at most `attempts` times, waiting between attempts with exponential
-- backoff and full jitter (wire.backoff_ms, as llm.call). The innermost
-- open span records how many retries happened, whether the last attempt
-- succeeded and the time spent waiting; each failed attempt is an event
-- on it. The final error is raised again unchanged.
--
-- Options: attempts (>= 1, default 3), backoff_ms (base wait, default 200),
-- max_backoff_ms (cap, default 10000), retry_if = function(err) -> bool
-- (default: retry every error). fn receives the attempt number.

local sched = require "moonspan.sched"
local backoff_ms = require("moonspan.wire").backoff_ms

local function describe(err)
  if type(err) == "table" then
    return tostring(err.message or err.type or err)
  end
  return tostring(err)
end

local function check(opts)
  if type(opts) ~= "table" then
    error("retry: expected a table, e.g. retry{attempts = 3, backoff_ms = 200, function() ... end}", 3)
  end
  local fn = opts.fn or opts[1]
  if type(fn) ~= "function" then
    error("retry: the function to run is missing; pass it as the first array item or fn =", 3)
  end
  local attempts = opts.attempts or 3
  if math.type(attempts) ~= "integer" or attempts < 1 then
    error("retry: attempts must be an integer >= 1, got " .. tostring(opts.attempts), 3)
  end
  local backoff = opts.backoff_ms or 200
  if type(backoff) ~= "number" or backoff < 0 then
    error("retry: backoff_ms must be a number >= 0, got " .. tostring(opts.backoff_ms), 3)
  end
  local cap = opts.max_backoff_ms or 10000
  if type(cap) ~= "number" or cap < 0 then
    error("retry: max_backoff_ms must be a number >= 0, got " .. tostring(opts.max_backoff_ms), 3)
  end
  if opts.retry_if ~= nil and type(opts.retry_if) ~= "function" then
    error("retry: retry_if must be a function(err) returning true to retry", 3)
  end
  return fn, attempts, backoff, cap
end

local function retry(opts)
  local fn, attempts, base, cap = check(opts)
  local span = moonspan.current_span()
  local waited = 0 -- ms spent in backoff, stored with the retries
  for attempt = 1, attempts do
    local result = table.pack(pcall(fn, attempt))
    if result[1] then
      if attempt > 1 and span then span:add_retries(attempt - 1, true, waited) end
      return table.unpack(result, 2, result.n)
    end
    local err = result[2]
    if attempt == attempts or (opts.retry_if and not opts.retry_if(err)) then
      if attempt > 1 and span then span:add_retries(attempt - 1, false, waited) end
      error(err, 0) -- the same value, unchanged
    end
    local wait = backoff_ms(base, cap, attempt)
    if span then
      span:event("retry", {attempt = attempt, error = describe(err), wait_ms = wait})
    end
    local t0 = moonspan.now_ms()
    sched.sleep(wait)
    waited = waited + (moonspan.now_ms() - t0)
  end
end

return retry
