-- Suite-wide gates (moonspan.gates): checks over all of a suite's cases,
-- evaluated once the last case has run, each printed with its value and
-- failing the suite (exit 1) when it fails.
--
--   return suite "rag" {
--     ...,
--     gates = { p95_ms("generate", 800), pass_rate(0.9), mean_score("judge", 0.7),
--               max_cost_usd_total(1.0) },
--   }
--
--   p95_ms(step, ms)          the p95 duration of the step's spans over every case (every
--                             repetition) is at most ms; a step is a span name, or a path
--                             with a "/"; folded spans enter with their histogram's p95
--                             (the value is then marked ~, an estimate)
--   pass_rate(x)              the suite's pass rate is at least x (like threshold, printed
--                             as a gate)
--   mean_score(scorer, x)     the mean score of the scorer named `scorer` (its name as the
--                             output prints it) over the cases it scored is at least x;
--                             cases where it raised are left out and counted
--   max_cost_usd_total(x)     the run's LLM calls cost at most x dollars in all (replayed
--                             calls count as recorded, as max_cost_usd does); a case of
--                             unknown cost fails it
--
-- A gate's result is {name, value, limit, pass, reason}; the run stores
-- them in its eval_runs.config under "gates".

local case_spans = require "moonspan.case_spans"
local scorers = require "moonspan.scorers"

local G = {}

local GATE = {__name = "moonspan.gate"}

function G.is_gate(x)
  return getmetatable(x) == GATE
end

-- the scorers' renderings and argument checks, so a gate's errors and
-- reasons read as a scorer's do
local short, fmt_usd = scorers.short, scorers.fmt_usd
local check_step, check_limit = scorers.check_step_arg, scorers.check_limit_arg

local function check_rate(name, x, level)
  if type(x) ~= "number" or x ~= x or x < 0 or x > 1 then
    error(string.format("%s: expected a number between 0 and 1 (0.9 = 90%%), got %s", name, short(x)), level + 1)
  end
end

local function fmt_ms(x)
  return moonspan.fmt_ms(x)
end

function G.p95_ms(step, ms)
  check_step("p95_ms", step, 2)
  check_limit("p95_ms", ms, "a limit in ms", 2)
  return setmetatable({name = string.format('p95_ms("%s", %s)', step, tostring(ms)), step = step, limit = ms,
                       check = function(results)
    local values, fold_p95, cases, n = {}, nil, 0, 0
    for _, r in ipairs(results) do
      local d = r.gate_steps and r.gate_steps[step]
      if d then
        if #d.values > 0 or d.fold_p95 then cases = cases + 1 end
        for _, v in ipairs(d.values) do values[#values + 1] = v end
        if d.fold_p95 then fold_p95 = math.max(fold_p95 or 0, d.fold_p95) end
        n = n + #d.values + (d.fold_count or 0)
      end
    end
    if #values == 0 and not fold_p95 then
      return nil, false, string.format("no span %s '%s' in any case", step:find("/", 1, true) and "at path" or "named",
                                       step)
    end
    local p = #values > 0 and moonspan.percentiles(values, {95})[1] or 0
    local approx = fold_p95 ~= nil
    if approx then p = math.max(p, fold_p95) end
    local what = string.format("%s%s over %d span%s in %d case%s", approx and "~" or "", fmt_ms(p), n,
                               n == 1 and "" or "s", cases, cases == 1 and "" or "s")
    if approx then what = what .. " (with folded spans: an estimate)" end
    local pass = p <= ms
    return p, pass, string.format("%s %s %s", what, pass and "<=" or ">", fmt_ms(ms))
  end}, GATE)
end

function G.pass_rate(x)
  check_rate("pass_rate", x, 2)
  return setmetatable({name = string.format("pass_rate(%s)", tostring(x)), limit = x, check = function(results)
    local n, passed = #results, 0
    for _, r in ipairs(results) do
      if r.pass then passed = passed + 1 end
    end
    if n == 0 then return nil, false, "no case ran" end
    local rate = passed / n
    local pass = rate >= x - 1e-9
    return rate, pass, string.format("%.1f%% (%d/%d) %s %.1f%%", rate * 100, passed, n, pass and ">=" or "<", x * 100)
  end}, GATE)
end

function G.mean_score(scorer, x)
  if type(scorer) ~= "string" or scorer == "" then
    error('mean_score: expected the name of one of the suite\'s scorers, e.g. mean_score("llm_judge", 0.7), got '
          .. short(scorer), 2)
  end
  check_rate("mean_score", x, 2)
  return setmetatable({name = string.format('mean_score("%s", %s)', scorer, tostring(x)), scorer = scorer, limit = x,
                       check = function(results)
    local sum, n, errors = 0, 0, 0
    for _, r in ipairs(results) do
      for _, sc in ipairs(r.scores or {}) do
        if sc.name == scorer then
          if sc.error then
            errors = errors + 1
          else
            sum, n = sum + sc.score, n + 1
          end
        end
      end
    end
    local errs = errors > 0 and string.format("; %d case%s where it raised left out", errors,
                                              errors == 1 and "" or "s") or ""
    if n == 0 then return nil, false, string.format("%s scored no case%s", scorer, errs) end
    local mean = sum / n
    local pass = mean >= x - 1e-9
    return mean, pass, string.format("mean %.3f over %d case%s %s %.3g%s", mean, n, n == 1 and "" or "s",
                                     pass and ">=" or "<", x, errs)
  end}, GATE)
end

function G.max_cost_usd_total(x)
  check_limit("max_cost_usd_total", x, "a limit in dollars", 2)
  return setmetatable({name = string.format("max_cost_usd_total(%s)", tostring(x)), limit = x,
                       check = function(results)
    local total, unknown = 0, 0
    for _, r in ipairs(results) do
      if r.cost_usd == nil then
        unknown = unknown + 1
      else
        total = total + r.cost_usd
      end
    end
    if unknown > 0 then
      return nil, false, string.format("cost unknown for %d case%s (a model without a price), so the total cannot "
                                       .. "be held under %s", unknown, unknown == 1 and "" or "s", fmt_usd(x))
    end
    local pass = total <= x + 1e-12
    return total, pass, string.format("%s in all %s %s", fmt_usd(total), pass and "<=" or ">", fmt_usd(x))
  end}, GATE)
end

G.names = {"p95_ms", "pass_rate", "mean_score", "max_cost_usd_total"}

-- Checks a suite's gates list against its scorers. Returns the list, or
-- nil and a message.
function G.normalise(list, scorer_list)
  if type(list) ~= "table" then
    return nil, "gates must be a list, e.g. gates = { p95_ms(\"generate\", 800), pass_rate(0.9) }"
  end
  local names = {}
  for _, sc in ipairs(scorer_list) do names[sc.name] = true end
  for k, g in pairs(list) do
    if math.type(k) ~= "integer" or k < 1 or k > #list then
      return nil, "gates must be a list (no holes, no named entries); a nil entry is often a misspelt gate name"
    end
    if not G.is_gate(g) then
      if type(g) == "function" then
        for _, n in ipairs(G.names) do
          if G[n] == g then return nil, string.format("gates[%d] is the constructor %s itself; call it: %s(...)", k, n, n) end
        end
      end
      return nil, string.format("gates[%d] is a %s, not a gate; the gates are %s", k, type(g),
                                table.concat(G.names, ", "))
    end
    if g.scorer and not names[g.scorer] then
      local have = {}
      for _, sc in ipairs(scorer_list) do have[#have + 1] = sc.name end
      return nil, string.format("gates[%d] %s: the suite has no scorer named \"%s\" (its scorers: %s)", k, g.name,
                                g.scorer, #have > 0 and table.concat(have, ", ") or "none")
    end
  end
  return list
end

-- What the step gates of suite S need from one case: each step's
-- durations (plain spans) and the largest p95 of its folds. nil when the
-- suite has no step gate.
function G.collect(gates, ctx)
  local steps
  for _, g in ipairs(gates or {}) do
    if g.step then
      steps = steps or {}
      steps[g.step] = true
    end
  end
  if not steps or not ctx then return nil end
  local ok, list = pcall(case_spans.spans, ctx)
  if not ok then return nil end
  local out = {}
  for step in pairs(steps) do
    local d = {values = {}}
    for _, s in ipairs(case_spans.select(list, step)) do
      if s.kind == "fold" then
        d.fold_p95 = math.max(d.fold_p95 or 0, s.p95_ms)
        d.fold_count = (d.fold_count or 0) + s.count
      else
        d.values[#d.values + 1] = s.duration_ms
      end
    end
    out[step] = d
  end
  return out
end

-- Every gate's result over the results: {name, value, limit, pass, reason}.
function G.evaluate(gates, results)
  local out = {}
  for _, g in ipairs(gates or {}) do
    local ok, value, pass, reason = pcall(g.check, results)
    if not ok then
      value, pass, reason = nil, false, "the gate raised: " .. tostring(value)
    end
    out[#out + 1] = {name = g.name, value = value, limit = g.limit, pass = pass, reason = reason}
  end
  return out
end

-- Lines for the summary: one per gate, value and verdict.
function G.lines(results, indent)
  local lines = {}
  if not results or #results == 0 then return lines end
  local failed = 0
  for _, r in ipairs(results) do
    if not r.pass then failed = failed + 1 end
  end
  lines[1] = string.format("%sgates: %d of %d failed", indent, failed, #results)
  if failed == 0 then lines[1] = string.format("%sgates: all %d passed", indent, #results) end
  for _, r in ipairs(results) do
    lines[#lines + 1] = string.format("%s  %s %s: %s", indent, r.pass and "pass" or "FAIL", r.name, r.reason)
  end
  return lines
end

return G
