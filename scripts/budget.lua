-- Budgets that stop spending. Before every attempt llm.call sends, the
-- attempt's worst case is added to what is already spent under each
-- budget that applies; an attempt that could go over is not sent, and
-- the call raises a budget_exceeded error instead.
--
-- The budgets, in US dollars:
--   call     llm.call{budget_usd = X}, else llm.defaults.budget_usd: what
--            one call may spend, all its attempts together
--   request  trace(name, {budget_usd = X}, fn), else --budget-usd
--            request=X: what one trace may spend (its ledger lives in
--            moonspan._request_budgets, made and dropped by trace())
--   run      --budget-usd X (run=X): what the whole process may spend
--
-- Worst case: the prompt's estimated tokens (llm.estimate_tokens, about 4
-- bytes a token, over the system text, the messages and the tools, plus
-- 4 tokens per message), priced at the higher of the input and the cache
-- write price, plus max_tokens (or the provider's own default) of output.
-- While an attempt is in flight it holds its worst case under every
-- budget, so calls running at the same time (parallel, llm.map, eval
-- cases) cannot overshoot together; when it ends the hold becomes what it
-- cost: its usage's price when it answered, $0 when the provider refused
-- it with an HTTP status (nothing billed), its worst case otherwise (a
-- timeout or a broken stream may have been billed). Replayed calls are
-- never sent and spend nothing.
local S = require "moonspan.wire"

local budget = {
  run_usd = nil,      -- --budget-usd run=X
  request_usd = nil,  -- --budget-usd request=X (trace() applies it; kept for the run's own trace)
}

-- Float sums of prices must not refuse a call that fits to the cent.
local EPSILON = 1e-12

local run = {spent = 0, held = 0}
-- the ledgers of traces trace() did not open (the run's own trace)
local fallback = {}

local FIX = {
  call = "raise the call's budget_usd (or llm.defaults.budget_usd, --budget-usd call=X)",
  request = "raise the trace's budget_usd (or --budget-usd request=X)",
  run = "raise --budget-usd (run=X)",
}

function budget.usd(v)
  local s = string.format("%.6f", v):gsub("0+$", "")
  if s:match("%.%d$") then s = s .. "0" elseif s:match("%.$") then s = s .. "00" end
  return "$" .. s
end
local usd = budget.usd

-- Checks a budget given to llm.call or llm.defaults; nil when none.
local function call_limit(req, defaults, refuse)
  local v, from = req.budget_usd, "budget_usd"
  if v == nil then v, from = defaults.budget_usd, "llm.defaults.budget_usd" end
  if v == nil then return nil end
  if type(v) ~= "number" or not (v >= 0 and v <= 1e12) then
    refuse("invalid_request_error", string.format("llm.call: %s must be an amount of US dollars >= 0, "
      .. "e.g. 0.05, got %s", from, tostring(v)))
  end
  return v
end

local function request_ledger(trace_id)
  local ledger = moonspan._request_budgets[trace_id]
  if ledger then return ledger end
  if budget.request_usd == nil then return nil end
  ledger = fallback[trace_id]
  if not ledger then
    ledger = {limit = budget.request_usd}
    fallback[trace_id] = ledger
  end
  return ledger
end

-- The text whose size estimates the prompt: the system text, every
-- message's content (as JSON when it is not text), tool calls and tools.
local function prompt_text(req)
  local parts = {type(req.system) == "string" and req.system or ""}
  local function add(v)
    if type(v) == "string" then
      parts[#parts + 1] = v
    elseif v ~= nil then
      local ok, json = pcall(S.encode, v)
      parts[#parts + 1] = ok and json or ""
    end
  end
  for _, m in ipairs(req.messages) do
    add(m.content)
    add(m.tool_calls)
  end
  add(req.tools)
  return table.concat(parts, "\n")
end

local Guard = {}
Guard.__index = Guard

-- However the call ends, a hold still taken (an error or an interrupt
-- between admitting an attempt and settling it) counts as spent, at its
-- worst case: it may have been sent.
Guard.__close = function(g) g:settle(nil) end

-- The guard of call c (c.req, c.adapter, c.provider) in span s, or nil
-- when no budget applies. llm is the llm module (estimate_tokens,
-- defaults); refuse(type, message) raises a refusal before sending.
function budget.guard(llm, c, s, refuse)
  local ledgers = {}
  local limit = call_limit(c.req, llm.defaults, refuse)
  if limit then ledgers[#ledgers + 1] = {kind = "call", ledger = {limit = limit}} end
  local ok, tid = pcall(function() return s.trace_id end)
  local rl = ok and tid and request_ledger(tid)
  if rl then ledgers[#ledgers + 1] = {kind = "request", ledger = rl} end
  if budget.run_usd then
    run.limit = budget.run_usd
    ledgers[#ledgers + 1] = {kind = "run", ledger = run}
  end
  if #ledgers == 0 then return nil end
  local req = c.req
  local m = req.max_tokens
  if m ~= nil and (math.type(m) ~= "integer" and not (type(m) == "number" and m == math.floor(m))
                   or m < 1 or m > S.TOKENS_MAX) then
    refuse("invalid_request_error", "llm.call: max_tokens must be a whole number >= 1 (the most output "
      .. "tokens to pay for), got " .. tostring(m))
  end
  local g = setmetatable({ledgers = ledgers, s = s, held = nil}, Guard)
  g.input = llm.estimate_tokens(prompt_text(req)) + 4 * #req.messages
  g.max_tokens = math.tointeger(m) or c.adapter.default_max_tokens
  if c.adapter.free then
    g.worst = 0
  elseif g.max_tokens ~= nil then
    local a = moonspan.cost(req.model, {input_tokens = g.input, output_tokens = g.max_tokens})
    local b = moonspan.cost(req.model, {cache_write_tokens = g.input, output_tokens = g.max_tokens})
    g.worst = a and math.max(a, b)
  end
  return g
end

-- Raises budget_exceeded for ledger entry e, marking the span.
function Guard:stop(e, message)
  local s = self.s
  s:set("llm.budget.kind", e.kind)
  s:set("llm.budget.limit_usd", e.ledger.limit)
  s:set("llm.budget.spent_usd", e.ledger.spent or 0)
  if self.worst then s:set("llm.budget.estimate_usd", self.worst) end
  local err = S.error(nil, {type = "budget_exceeded", retryable = false, message = message})
  err.budget_kind, err.budget_usd = e.kind, e.ledger.limit
  err.spent_usd, err.estimate_usd = (e.ledger.spent or 0) + (e.ledger.held or 0), self.worst
  return err
end

-- Admits the next attempt: holds its worst case under every budget, or
-- returns the budget_exceeded error that stops it (nothing held then).
-- `after` says why this is a retry ("attempt 1 failed: ..."), or nil.
function Guard:admit(model, after)
  local worst = self.worst
  for _, e in ipairs(self.ledgers) do
    local l = e.ledger
    local what = string.format("the %s budget of %s", e.kind, usd(l.limit))
    if worst == nil then
      local why = self.max_tokens == nil
        and string.format("has no max_tokens, so what it may cost has no bound; pass max_tokens = N "
          .. "(the most output tokens to pay for)")
        or string.format("is to model '%s', which has no price, so it cannot be shown to fit; "
          .. "give its price with --prices FILE", model)
      return (self:stop(e, string.format("llm.call: not sent: under %s, this call %s", what, why)))
    end
    local spent, held = l.spent or 0, l.held or 0
    if spent + held + worst > l.limit + EPSILON then
      return (self:stop(e, string.format("llm.call: not sent: %s would be exceeded: %s spent%s, and "
        .. "this %s may cost up to %s (~%d input tokens estimated, max_tokens %s)%s; %s, or lower max_tokens",
        what, usd(spent), held > 0 and string.format(" (+ %s held by calls in flight)", usd(held)) or "",
        after and "retry" or "call", usd(worst), self.input, tostring(self.max_tokens),
        after and (" after " .. after) or "", FIX[e.kind])))
    end
  end
  for _, e in ipairs(self.ledgers) do
    e.ledger.held = (e.ledger.held or 0) + worst
  end
  self.held = worst
  return nil
end

-- Ends an attempt: its hold becomes `cost` (nil: the worst case) under
-- every budget.
function Guard:settle(cost)
  local held = self.held
  if held == nil then return end
  self.held = nil
  if cost == nil then cost = held end
  for _, e in ipairs(self.ledgers) do
    local l = e.ledger
    l.held = math.max(0, (l.held or 0) - held)
    l.spent = (l.spent or 0) + cost
  end
end

-- What a failed attempt cost: nothing when the provider refused it with
-- an HTTP status, else its worst case.
function Guard:failed(err)
  local status = type(err) == "table" and tonumber(err.status)
  self:settle((status and status >= 300) and 0 or nil)
end

-- Spent so far under the run budget (for tests and the curious).
function budget.run_spent()
  return run.spent
end

return budget
