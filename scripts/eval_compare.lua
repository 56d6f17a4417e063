-- moonspan.eval_compare: an eval run against its baseline, with
-- statistics, so that "better" and "worse" survive noise.
--
-- Results are paired by (case id, repeat index); a result without a
-- partner in the other run is counted as unpaired and left out of every
-- test. Over the pairs:
--   pass/fail      the exact McNemar test on the discordant pairs
--                  (pass -> fail, fail -> pass), two-sided
--   each scorer    its mean in both runs (over the pairs) and a paired
--                  bootstrap interval of the mean difference; a scorer whose every score is 0
--                  or 1 is pass/fail and is tested like the pass rate
--                  (McNemar), as a bootstrap over a few discordant pairs
--                  is too narrow
--   latency, cost  a paired bootstrap interval of the mean difference
--                  per case
-- Each line gets a verdict, decided by the test alone at ALPHA: a p-value
-- under ALPHA or an interval that excludes 0 is "regressed" or "improved"
-- (whichever is worse for that metric: a lower pass rate or score, a
-- higher latency or cost); anything else is "no evidence of change". The
-- smallest effect the suite can detect at its size is stated too.
--
-- A bootstrap interval needs pairs to resample: under MIN_PAIRS (5, as
-- `moonspan diff` asks of each side) it is shown but gives no verdict
-- (two pairs resample into at most three means, an interval of noise).
--
-- The statistics are moonspan.stats (C, telemetry/ms_stats.c), seeded:
-- the same two runs always give the same verdicts.

local scorers = require "moonspan.scorers"

local M = {}

M.ALPHA = 0.05
M.LEVEL = 1 - M.ALPHA
M.POWER = 0.8
M.MIN_PAIRS = 5
M.METRICS = {"pass", "scores", "latency", "cost"} -- what --fail-if-regressed may count
M.DEFAULT_GATE = {pass = true, scores = true}

local REGRESSED, IMPROVED, NONE = "regressed", "improved", "no evidence of change"
local TOO_FEW = "too few pairs for a verdict (fewer than " .. M.MIN_PAIRS .. ")"
M.REGRESSED, M.IMPROVED, M.NONE, M.TOO_FEW = REGRESSED, IMPROVED, NONE, TOO_FEW

local function stats()
  local s = moonspan and moonspan.stats
  if not s then error("eval baseline statistics need moonspan.stats, which this moonspan lacks", 0) end
  return s
end

-- Scores come back from the store as JSON text with 14 significant
-- digits, the current run's straight from the scorer: a difference that
-- small is no difference.
local function same(a, b)
  return math.abs(a - b) <= 1e-9 * math.max(1, math.abs(a), math.abs(b))
end

local function pair_key(r)
  return tostring(r.case_id) .. "\0" .. tostring(r.repeat_index or 1)
end

-- Each result's scores by scorer name; a name that repeats within one
-- result (two contains scorers) is told apart as "name#2".
local function scores_by_name(r, order, seen)
  local out, count = {}, {}
  for _, sc in ipairs(type(r.scores) == "table" and r.scores or {}) do
    if type(sc) == "table" and type(sc.name) == "string" then
      count[sc.name] = (count[sc.name] or 0) + 1
      local name = count[sc.name] == 1 and sc.name or (sc.name .. "#" .. count[sc.name])
      if type(sc.score) == "number" and sc.score == sc.score then out[name] = sc.score end
      if order and not seen[name] then
        seen[name] = true
        order[#order + 1] = name
      end
    end
  end
  return out
end
M.scores_by_name = scores_by_name

-- The mean score of every scorer over a list of results, in the order the
-- scorers first appear: {{name =, mean =, n =}}. A run without a baseline
-- shows these too.
function M.scorer_means(results)
  local order, seen, sum, n = {}, {}, {}, {}
  for _, r in ipairs(results) do
    for name, v in pairs(scores_by_name(r, order, seen)) do
      sum[name] = (sum[name] or 0) + v
      n[name] = (n[name] or 0) + 1
    end
  end
  local out = {}
  for _, name in ipairs(order) do
    out[#out + 1] = {name = name, n = n[name] or 0, mean = n[name] and sum[name] / n[name] or nil}
  end
  return out
end

local function mean(xs)
  if #xs == 0 then return nil end
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  return s / #xs
end

local function sd(xs)
  if #xs < 2 then return nil end
  local m, s = mean(xs), 0
  for _, x in ipairs(xs) do s = s + (x - m) ^ 2 end
  return math.sqrt(s / (#xs - 1))
end

-- The verdict of an interval of (after - before) when higher is worse
-- (`up_is_worse`) or lower is worse.
local function interval_verdict(ci, up_is_worse)
  if not ci or ci.lo == nil or ci.hi == nil or ci.lo ~= ci.lo or ci.hi ~= ci.hi then return NONE end
  if ci.lo > 0 then return up_is_worse and REGRESSED or IMPROVED end
  if ci.hi < 0 then return up_is_worse and IMPROVED or REGRESSED end
  return NONE
end
M.interval_verdict = interval_verdict

-- McNemar on b (better -> worse) and c (worse -> better) pairs.
local function mcnemar_verdict(b, c)
  local p = stats().mcnemar(b, c)
  if p < M.ALPHA then return (b > c) and REGRESSED or IMPROVED, p end
  return NONE, p
end

-- A paired mean difference: {est, lo, hi, n, sd, mde, verdict}.
local function paired(d, up_is_worse)
  local out = {n = #d}
  if #d == 0 then
    out.verdict = NONE
    return out
  end
  local ci = stats().paired_mean(d, {level = M.LEVEL})
  out.est, out.lo, out.hi = ci.est, ci.lo, ci.hi
  out.sd = sd(d)
  out.mde = out.sd and stats().mde_mean(out.sd, #d, M.LEVEL, M.POWER) or nil
  out.verdict = #d < M.MIN_PAIRS and TOO_FEW or interval_verdict(out, up_is_worse)
  return out
end

-- Compares `current` with `baseline` (lists of result records, as the
-- runner makes them or store.results reads them back). Returns
-- {pairs, unpaired_current, unpaired_baseline, pass = {...},
--  scorers = {{name, before, after, est, lo, hi, verdict, binary, p, b, c, mde}},
--  latency = {...}, cost = {...}, worse = {{current, baseline, why}},
--  regressed_metrics = {pass = true, ...}}.
function M.paired(current, baseline)
  local base = {}
  for _, r in ipairs(baseline) do base[pair_key(r)] = r end
  local used, pairs_ = {}, {}
  for _, r in ipairs(current) do
    local k = pair_key(r)
    local b = base[k]
    if b and not used[k] then
      used[k] = true
      pairs_[#pairs_ + 1] = {cur = r, base = b}
    end
  end
  local c = {pairs = #pairs_, unpaired_current = #current - #pairs_, unpaired_baseline = #baseline - #pairs_}

  -- pass / fail
  local pf, fp, pb, pa = 0, 0, 0, 0
  for _, p in ipairs(pairs_) do
    if p.base.pass then pb = pb + 1 end
    if p.cur.pass then pa = pa + 1 end
    if p.base.pass and not p.cur.pass then pf = pf + 1 end
    if not p.base.pass and p.cur.pass then fp = fp + 1 end
  end
  local pass = {pass_to_fail = pf, fail_to_pass = fp, n = #pairs_,
                before = #pairs_ > 0 and pb / #pairs_ or nil, after = #pairs_ > 0 and pa / #pairs_ or nil}
  pass.verdict, pass.p = mcnemar_verdict(pf, fp)
  pass.mde = #pairs_ > 0 and stats().mde_mcnemar(#pairs_, M.LEVEL) or nil
  c.pass = pass

  -- scorers, in the order the current run lists them
  local order, seen = {}, {}
  local cur_scores, base_scores = {}, {}
  for i, p in ipairs(pairs_) do
    cur_scores[i] = scores_by_name(p.cur, order, seen)
    base_scores[i] = scores_by_name(p.base, order, seen)
  end
  c.scorers = {}
  for _, name in ipairs(order) do
    -- the means over the pairs that have the score in both runs, so that
    -- "mean a -> b" and the difference's interval speak of the same cases
    local d, binary, worse, better, sum_a, sum_b = {}, true, 0, 0, 0, 0
    for i = 1, #pairs_ do
      local a, b = base_scores[i][name], cur_scores[i][name]
      if a ~= nil and b ~= nil then
        sum_a, sum_b = sum_a + a, sum_b + b
        d[#d + 1] = same(a, b) and 0 or b - a
        if (a ~= 0 and a ~= 1) or (b ~= 0 and b ~= 1) then binary = false end
        if not same(a, b) then
          if b < a then worse = worse + 1 else better = better + 1 end
        end
      end
    end
    local row = paired(d, false)
    row.name = name
    if #d > 0 then row.before, row.after = sum_a / #d, sum_b / #d end
    row.binary = binary and #d > 0
    if row.binary then
      row.b, row.c = worse, better
      row.verdict, row.p = mcnemar_verdict(worse, better)
      row.mde = stats().mde_mcnemar(#d, M.LEVEL)
    end
    c.scorers[#c.scorers + 1] = row
  end

  -- latency and cost per case, where both results have them
  local dl, dc = {}, {}
  for _, p in ipairs(pairs_) do
    local a, b = p.base.latency_ms, p.cur.latency_ms
    if type(a) == "number" and type(b) == "number" then dl[#dl + 1] = b - a end
    a, b = p.base.cost_usd, p.cur.cost_usd
    if type(a) == "number" and type(b) == "number" then dc[#dc + 1] = b - a end
  end
  c.latency = paired(dl, true)
  c.cost = paired(dc, true)

  -- the pairs that got worse: pass -> fail, or a scorer dropped
  c.worse = {}
  for i, p in ipairs(pairs_) do
    local why
    if p.base.pass and not p.cur.pass then
      why = "pass -> fail"
    else
      for _, name in ipairs(order) do
        local a, b = base_scores[i][name], cur_scores[i][name]
        if a ~= nil and b ~= nil and b < a and not same(a, b) then
          why = string.format("%s %.3g -> %.3g", name, a, b)
          break
        end
      end
    end
    if why then c.worse[#c.worse + 1] = {current = p.cur, baseline = p.base, why = why} end
  end

  c.verdicts = {pass = pass.verdict, latency = c.latency.verdict, cost = c.cost.verdict}
  c.regressed_metrics = {}
  if pass.verdict == REGRESSED then c.regressed_metrics.pass = true end
  for _, s in ipairs(c.scorers) do
    if s.verdict == REGRESSED then c.regressed_metrics.scores = true end
  end
  if c.latency.verdict == REGRESSED then c.regressed_metrics.latency = true end
  if c.cost.verdict == REGRESSED then c.regressed_metrics.cost = true end
  return c
end

-- Whether the comparison shows a regression in one of the metrics of
-- `gate` (a set: pass, scores, latency, cost; default pass and scores).
function M.regressed(c, gate)
  gate = gate or M.DEFAULT_GATE
  for metric in pairs(c.regressed_metrics) do
    if gate[metric] then return true end
  end
  return false
end

-- Parses the value of --fail-if-regressed: nil or "" for the default,
-- else a comma list of pass, scores, latency, cost ("all" for every one).
-- Returns the set, or nil and a message.
function M.parse_gate(v)
  if v == nil or v == true or v == "" then return M.DEFAULT_GATE end
  local set, any = {}, false
  for item in tostring(v):gmatch("[^,]+") do
    if item == "all" then
      for _, m in ipairs(M.METRICS) do set[m] = true end
    else
      local ok = false
      for _, m in ipairs(M.METRICS) do
        if item == m then ok = true end
      end
      if not ok then
        return nil, string.format("--fail-if-regressed: unknown metric '%s'; use a comma list of %s (or all)",
                                  item, table.concat(M.METRICS, ", "))
      end
      set[item] = true
    end
    any = true
  end
  if not any then return nil, "--fail-if-regressed: empty list; use e.g. --fail-if-regressed=pass,scores,latency" end
  return set
end

-- --- stored -----------------------------------------------------------------

M.STORED_WORSE = 100 -- pairs that got worse kept in the stored comparison

-- A finite number, or nil: the stored JSON has no NaN (cjson refuses it).
local function finite(x)
  if type(x) ~= "number" or x ~= x or x == math.huge or x == -math.huge then return nil end
  return x
end

local function stored_paired(row)
  return {n = row.n, est = finite(row.est), lo = finite(row.lo), hi = finite(row.hi), mde = finite(row.mde),
          verdict = row.verdict}
end

-- The comparison `c` (M.paired) against eval run `baseline_id` as plain
-- data for the run's stored config (config.comparison), so a reader of
-- the store (`moonspan ui`, /api/eval) shows the numbers the run printed
-- without computing them again: {baseline_run, alpha, level, min_pairs,
-- pairs, unpaired_current, unpaired_baseline, pass = {before, after,
-- pass_to_fail, fail_to_pass, n, p, mde, verdict}, scorers = {{name,
-- binary, before, after, n, est, lo, hi, p, worse, better, mde, verdict}},
-- latency, cost = {n, est, lo, hi, mde, verdict}, worse = {{case_id,
-- repeat_index, why, first_change}}} (the first M.STORED_WORSE pairs that
-- got worse; `first_changes` are eval.first_changes' texts, in the same
-- order). Missing numbers are absent (JSON null to a reader); cjson writes
-- an empty list as {}, which readers take for [] (ms_eval_view.c does).
function M.stored(c, baseline_id, first_changes)
  local p = c.pass
  local out = {baseline_run = baseline_id, alpha = M.ALPHA, level = M.LEVEL, min_pairs = M.MIN_PAIRS,
               pairs = c.pairs, unpaired_current = c.unpaired_current, unpaired_baseline = c.unpaired_baseline,
               pass = {before = finite(p.before), after = finite(p.after), pass_to_fail = p.pass_to_fail,
                       fail_to_pass = p.fail_to_pass, n = p.n, p = finite(p.p), mde = finite(p.mde),
                       verdict = p.verdict},
               scorers = {}, latency = stored_paired(c.latency), cost = stored_paired(c.cost), worse = {}}
  for _, sc in ipairs(c.scorers) do
    local row = stored_paired(sc)
    row.name, row.binary = sc.name, sc.binary
    row.before, row.after, row.p = finite(sc.before), finite(sc.after), finite(sc.p)
    row.worse, row.better = sc.b, sc.c
    out.scorers[#out.scorers + 1] = row
  end
  for i, w in ipairs(c.worse) do
    if i > M.STORED_WORSE then break end
    local fc = first_changes and first_changes[i]
    out.worse[#out.worse + 1] = {case_id = w.current.case_id, repeat_index = w.current.repeat_index or 1,
                                 why = w.why, first_change = fc and fc.text or nil}
  end
  return out
end

-- --- text ------------------------------------------------------------------

-- a rate as a percentage, "-" when there is none (eval.lua's fmt_pct too)
local function pct(x)
  if x == nil then return "-" end
  return string.format("%.1f%%", x * 100)
end
M.fmt_pct = pct

local function num(x)
  if x == nil or x ~= x then return "-" end
  return string.format("%.3f", x)
end

local function signed(x, fmt)
  if x == nil or x ~= x then return "-" end
  return (x < 0 and "-" or "+") .. fmt(math.abs(x))
end

local function ms(x) return moonspan.fmt_ms(x) end
local usd = scorers.fmt_usd

local function pvalue(p)
  if p == nil then return "-" end
  if p < 0.001 then return "< 0.001" end
  return string.format("%.3f", p)
end

local function interval(row, fmt)
  if row.est == nil then return "no pairs" end
  return string.format("%s [%s, %s]", signed(row.est, fmt), signed(row.lo, fmt), signed(row.hi, fmt))
end

-- The lines of a comparison (no trailing newline), each starting with
-- `indent`. `shown` escapes text from suites (case ids, scorer names);
-- `first_change(worse)` may return a "first change: ..." text for a pair
-- that got worse.
function M.lines(c, baseline_id, indent, opts)
  opts = opts or {}
  local shown = opts.shown or tostring
  local out = {}
  local function add(fmt, ...) out[#out + 1] = indent .. string.format(fmt, ...) end
  add("vs eval run %s: %d pairs by case and repeat%s", tostring(baseline_id), c.pairs,
      (c.unpaired_current + c.unpaired_baseline > 0)
        and string.format(" (unpaired, left out: %d of this run, %d of the baseline)", c.unpaired_current,
                          c.unpaired_baseline) or "")
  local p = c.pass
  add("  pass rate %s -> %s (%s pts): %d pass->fail, %d fail->pass, McNemar p = %s: %s", pct(p.before),
      pct(p.after), (p.before and p.after) and string.format("%+.1f", (p.after - p.before) * 100) or "n/a",
      p.pass_to_fail, p.fail_to_pass, pvalue(p.p), p.verdict)
  for _, s in ipairs(c.scorers) do
    if s.binary then
      add("  score %s: mean %s -> %s, %d worse, %d better, McNemar p = %s: %s", shown(s.name), num(s.before),
          num(s.after), s.b, s.c, pvalue(s.p), s.verdict)
    else
      add("  score %s: mean %s -> %s, difference %s (95%% CI): %s", shown(s.name), num(s.before), num(s.after),
          interval(s, num), s.verdict)
    end
  end
  add("  latency per case: %s (95%% CI): %s", interval(c.latency, ms), c.latency.verdict)
  if c.cost.n > 0 then add("  cost per case: %s (95%% CI): %s", interval(c.cost, usd), c.cost.verdict) end
  -- what the suite could have seen at all
  local mde = {}
  mde[#mde + 1] = p.mde and string.format("pass rate %.1f pts", p.mde * 100) or "pass rate: none at this size"
  for _, s in ipairs(c.scorers) do
    if s.mde then
      mde[#mde + 1] = s.binary and string.format("%s %.1f pts", shown(s.name), s.mde * 100)
                      or string.format("%s %.3f", shown(s.name), s.mde)
    end
  end
  if c.latency.mde then mde[#mde + 1] = "latency " .. ms(c.latency.mde) end
  add("  smallest change this suite can detect (%d pairs, alpha %.2f, power %.0f%%): %s", c.pairs, M.ALPHA,
      M.POWER * 100, table.concat(mde, ", "))
  return out
end

return M
