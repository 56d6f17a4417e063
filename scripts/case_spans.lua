-- The spans of an eval case (moonspan.case_spans), for scorers and suite
-- gates: spans(ctx) and the lookups the span-level scorers share.
--
-- spans(ctx) takes the ctx a scorer receives (function(output, case, ctx))
-- or a trace's ctx, and returns the case trace's ended spans, in the order
-- they began, as plain tables:
--
--   name, path ("retrieve/generate": the names from the request down),
--   index / parent (begin order within the trace; parent 0 = the request),
--   kind ("span", "llm" or "fold"), status ("ok", "error", "interrupted",
--   "incomplete"), start_ms (from the trace's start), duration_ms,
--   error / error_type / error_own (when it failed; own = raised there, not
--   passed through from a child), model / provider / input_tokens /
--   output_tokens / cache_read_tokens / cache_write_tokens /
--   tokens_estimated / replayed / cost_usd (LLM calls; cost_usd nil when the
--   price is unknown), retries / retry_succeeded / backoff_ms (retry() and
--   llm.call record them), attrs (the span's attributes, a table),
--   and for a fold: count, errors, total_ms (= duration_ms), min_ms, max_ms,
--   p50_ms, p95_ms (estimates from its histogram).
--
-- The eval's own spans are left out, so a case's spans read as the
-- pipeline's do in production: each scorer's `eval.score:NAME` span with
-- everything inside it (an llm_judge's call), and an `eval.run` span around
-- run() where a case trace has one (stores written before run() ran at the
-- trace's root): its children's paths start below it.
--
-- The list is whole even when the trace was written in parts while open
-- (the host keeps a summary of every span a cut moves out of memory,
-- ctx:spans()); a list that would be incomplete raises instead.

local cjson = require "cjson"

local M = {}

local SCORE = "eval.score:"
local RUN = "eval.run"

local function handle_of(ctx)
  if ctx == nil then
    error("spans: expected the ctx a scorer receives (function(output, case, ctx)), got nil", 3)
  end
  local h = ctx
  if type(ctx) == "table" then h = ctx.trace end
  if h == nil then
    error("spans: expected the ctx a scorer receives (function(output, case, ctx)); this ctx has no trace", 3)
  end
  local ok, has = pcall(function() return h.spans end)
  if not ok or type(has) ~= "function" then
    error("spans: expected the ctx a scorer receives (function(output, case, ctx)) or a trace's ctx, got a "
          .. type(ctx), 3)
  end
  return h
end

-- Folds of one path cut apart (a cut in the middle of their repetitions)
-- become one entry again.
local function merge_fold(into, f)
  into.count = into.count + f.count
  into.errors = into.errors + f.errors
  into.total_ms = into.total_ms + f.total_ms
  into.duration_ms = into.total_ms
  into.min_ms = math.min(into.min_ms, f.min_ms)
  into.max_ms = math.max(into.max_ms, f.max_ms)
  into.p50_ms = math.max(into.p50_ms, f.p50_ms) -- an estimate either way; the larger one
  into.p95_ms = math.max(into.p95_ms, f.p95_ms)
  if f.status ~= "ok" then into.status = f.status end
end

function M.spans(ctx)
  local raw = handle_of(ctx):spans()
  table.sort(raw, function(a, b) return a.index < b.index end)
  local out, folds, dropped = {}, {}, {}
  for _, s in ipairs(raw) do
    local p = s.path
    if p == RUN or p:sub(1, #SCORE) == SCORE or dropped[s.parent] then
      if p ~= RUN then dropped[s.index] = true end
    else
      if p:sub(1, #RUN + 1) == RUN .. "/" then
        s.path = p:sub(#RUN + 2)
      end
      if s.attrs_json then
        local ok, v = pcall(cjson.decode, s.attrs_json)
        s.attrs = ok and type(v) == "table" and v or {}
        s.attrs_json = nil
      else
        s.attrs = {}
      end
      if s.kind == "fold" and folds[s.path] then
        merge_fold(folds[s.path], s)
      else
        if s.kind == "fold" then folds[s.path] = s end
        out[#out + 1] = s
      end
    end
  end
  -- a child of eval.run hangs from the request, as in production
  local run_index
  for _, s in ipairs(raw) do
    if s.path == RUN then run_index = s.index end
  end
  if run_index then
    for _, s in ipairs(out) do
      if s.parent == run_index then s.parent = 0 end
    end
  end
  return out
end

-- The spans a step names: by path when it has a "/" ("retrieve/generate"),
-- else by name.
function M.select(list, step)
  local by_path = step:find("/", 1, true) ~= nil
  local out = {}
  for _, s in ipairs(list) do
    if (by_path and s.path or s.name) == step then out[#out + 1] = s end
  end
  return out
end

-- The names a case's spans have, for a reason saying a step is missing.
function M.names(list, max)
  local seen, names = {}, {}
  for _, s in ipairs(list) do
    if not seen[s.name] then
      seen[s.name] = true
      names[#names + 1] = s.name
    end
  end
  max = max or 8
  local shown = {}
  for i = 1, math.min(#names, max) do shown[i] = names[i] end
  local txt = table.concat(shown, ", ")
  if #names > max then txt = txt .. string.format(", ... (%d more)", #names - max) end
  return txt, #names
end

-- The reason a step that never ran gives.
function M.missing(list, step)
  local names, n = M.names(list)
  local what = step:find("/", 1, true) and "no span at path '" .. step .. "'" or "no span named '" .. step .. "'"
  if n == 0 then return what .. " in the case's trace (it has no spans)" end
  return string.format("%s in the case's trace (its spans: %s)", what, names)
end

-- Usage of span s with everything inside it: input/output tokens, cost
-- (nil when a call inside has no price), llm calls, whether any tokens
-- were estimated.
function M.usage(list, s)
  local children = {}
  for _, x in ipairs(list) do
    local c = children[x.parent]
    if not c then
      c = {}
      children[x.parent] = c
    end
    c[#c + 1] = x
  end
  local u = {input_tokens = 0, output_tokens = 0, cost_usd = 0, llm_calls = 0, estimated = false}
  local function add(x)
    if x.input_tokens then
      u.llm_calls = u.llm_calls + 1
      u.input_tokens = u.input_tokens + x.input_tokens
      u.output_tokens = u.output_tokens + x.output_tokens
      if x.tokens_estimated then u.estimated = true end
      if x.cost_usd == nil then
        u.unknown = u.unknown or x.model or "a model"
      else
        u.cost_usd = u.cost_usd + x.cost_usd
      end
    end
    for _, c in ipairs(children[x.index] or {}) do add(c) end
  end
  add(s)
  if u.unknown then u.cost_usd = nil end
  return u
end

-- p95 (ms) of the spans `sel`: exact (linear interpolation, as the
-- report) over plain spans; a fold enters with its histogram's p95, and
-- then the result is the larger of the two and marked approximate.
function M.p95(sel)
  local values, fold_p95 = {}, nil
  for _, s in ipairs(sel) do
    if s.kind == "fold" then
      fold_p95 = math.max(fold_p95 or 0, s.p95_ms)
    else
      values[#values + 1] = s.duration_ms
    end
  end
  local p
  if #values > 0 then p = moonspan.percentiles(values, {95})[1] end
  if fold_p95 then return math.max(p or 0, fold_p95), true end
  return p, false
end

return M
