-- Eval suites (moonspan.eval): the DSL, the runner behind `moonspan eval`,
-- and the pure functions it is made of (summary, baseline diff), kept
-- apart so specs can test them without a store. The cases' datasets and
-- filters live in moonspan.eval_dataset, what it prints and sends (the
-- summary text, alerts, JUnit) in moonspan.eval_output; both are
-- re-exported here.
--
--   return suite "capital-cities" {
--     dataset = "capitals.jsonl",          -- JSONL next to the suite file (or from the current
--                                          -- folder), or an inline list of case tables
--     run = function(case) return llm.call{...}.text end,
--     scorers = { contains(case_field "expected"), max_latency_ms(2000) },
--     threshold = 0.9,                     -- pass rate under which the suite fails (default 1)
--     gates = { p95_ms("generate", 800) }, -- checks over all cases (moonspan.gates)
--   }
--
-- `moonspan eval` calls main(opts), which installs the DSL as globals
-- (suite, case_field and the scorers of moonspan.scorers) before loading
-- the suite files; install_globals() does the same for other scripts.
--
-- Each case (and each repetition of it) runs as its own trace with
-- attributes eval_run, case_id and repeat_index (moonspan._case_trace).
-- run() runs at the trace's root, as a production request does: a
-- pipeline that opens its own trace() joins the case's trace, which takes
-- its name (else it is named `eval:{suite}:{case id}`), so a step `generate`
-- has the path `generate` in both. Each scorer is a span
-- `eval.score:{name}` after run() (so llm_judge's call nests there and its
-- cost counts). Latency is run()'s time; tokens and cost are the whole trace's.

local cjson = require "cjson"
local sched = require "moonspan.sched"
local scorers = require "moonspan.scorers"
local junit = require "moonspan.junit"
local gates = require "moonspan.gates"
local baseline = require "moonspan.eval_baseline"
local compare = require "moonspan.eval_compare"

local dataset = require "moonspan.eval_dataset"
local output = require "moonspan.eval_output"
local shown, fmt_ms, fmt_pct, fmt_usd = output.shown, output.fmt_ms, output.fmt_pct, output.fmt_usd
local case_label = output.case_label
local exists, dir_of = dataset.exists, dataset.dir_of

local M = {}
M.scorers = scorers
M.junit = junit
M.compare = compare
M.stdout, M.stderr = io.stdout, io.stderr -- swapped by specs

-- Messages name suites, files and cases, which come from the suite and
-- its dataset: control characters are made visible (moonspan.escape).
local function errf(fmt, ...)
  M.stderr:write(moonspan.escape(string.format(fmt, ...), true), "\n")
  M.stderr:flush()
end

-- --- the DSL ----------------------------------------------------------------

local SUITE = {__name = "moonspan.suite"}
local SUITE_FIELDS = {dataset = true, run = true, scorers = true, threshold = true, description = true,
                      gates = true}

function M.is_suite(x)
  return getmetatable(x) == SUITE
end

-- suite "name" { dataset =, run =, scorers =, threshold =, description = }
function M.suite(name)
  if type(name) ~= "string" or name == "" then
    error('suite: expected a name, e.g. suite "capital-cities" { dataset = ..., run = ..., scorers = {...} }', 2)
  end
  -- where `suite "name"` is written (the { ... } part is often a tail
  -- call, which leaves no frame of the suite file to point at)
  local info = debug.getinfo(2, "Sl")
  local file = info and info.source:match("^@(.*)") or (info and info.short_src) or "?"
  local line = info and info.currentline or 0
  return function(def)
    local function fail(msg)
      error(string.format('%s:%d: suite "%s": %s', file, line, name, msg), 0)
    end
    if type(def) ~= "table" then
      fail('expected a table after the name: suite "' .. name .. '" { dataset = ..., run = function(case) ... end }')
    end
    for k in pairs(def) do
      if not SUITE_FIELDS[k] then
        fail(string.format("unknown field '%s' (a suite has dataset, run, scorers, gates, threshold, description)",
                           tostring(k)))
      end
    end
    if def.run == nil then
      fail("run is missing: add run = function(case) ... return output end")
    elseif type(def.run) ~= "function" then
      fail("run must be a function(case) returning the output, got a " .. type(def.run))
    end
    local ds = def.dataset
    if ds == nil then
      fail('has no cases: add dataset = "cases.jsonl" or dataset = {{id = ..., input = ..., expected = ...}, ...}')
    elseif type(ds) ~= "string" and type(ds) ~= "table" then
      fail("dataset must be a JSONL file name or a list of cases, got a " .. type(ds))
    elseif type(ds) == "table" and #ds == 0 then
      fail("has no cases: the dataset list is empty")
    end
    local list = def.scorers or {}
    if type(list) ~= "table" then
      fail("scorers must be a list, e.g. scorers = { contains(case_field \"expected\") }")
    end
    local normalised = {}
    for i = 1, #list do
      local sc, err = scorers.normalise(list[i], i)
      if not sc then fail(err) end
      normalised[i] = sc
    end
    for k in pairs(list) do
      if math.type(k) ~= "integer" or k < 1 or k > #list then
        fail("scorers must be a list (no holes, no named entries); a nil entry is often a misspelt scorer name")
      end
    end
    local gate_list, gerr = gates.normalise(def.gates or {}, normalised)
    if not gate_list then fail(gerr) end
    if #normalised == 0 and #gate_list == 0 then
      fail("has no scorers, so every case would pass without being judged; add scorers = { ... } "
           .. "(e.g. contains(case_field \"expected\"), or a function(output, case, ctx) returning a score) "
           .. "or gates = { ... }")
    end
    local threshold = def.threshold
    if threshold == nil then
      threshold = 1
    elseif type(threshold) ~= "number" or threshold < 0 or threshold > 1 then
      fail("threshold must be a pass rate between 0 and 1 (0.9 = 90%), got " .. scorers.short(threshold))
    end
    return setmetatable({name = name, dataset = ds, run = def.run, scorers = normalised, gates = gate_list,
                         threshold = threshold, description = def.description, file = file, line = line}, SUITE)
  end
end

M.case_field = scorers.case_field

-- The names main() makes global while suite files load and run.
function M.globals()
  local g = {suite = M.suite, case_field = scorers.case_field, spans = scorers.spans}
  for _, n in ipairs(scorers.names) do g[n] = scorers[n] end
  for _, n in ipairs(gates.names) do g[n] = gates[n] end
  return g
end

function M.install_globals(env)
  env = env or _G
  for k, v in pairs(M.globals()) do env[k] = v end
  return env
end

-- --- datasets and filters: moonspan.eval_dataset; formatting, alerts and
-- JUnit: moonspan.eval_output (both re-exported here, the runner's API) --

for k, v in pairs(dataset) do M[k] = v end
for k, v in pairs(output) do M[k] = v end

-- --- loading suite files ----------------------------------------------------

local function add_to_path(file)
  local d = dir_of(file)
  local entry = d .. "/?.lua;"
  if package.path:sub(1, #entry) ~= entry then package.path = entry .. package.path end
end

-- Loads a suite file. Returns a list of suites, or nil and a message that
-- names the file (and line, when Lua knows it).
function M.load_file(path)
  M.install_globals()
  local chunk, err = loadfile(path)
  if not chunk then
    if not exists(path) then return nil, path .. ": no such file" end
    return nil, tostring(err)
  end
  add_to_path(path)
  local ok, res = pcall(chunk)
  if not ok then
    if type(res) == "table" and getmetatable(res) and getmetatable(res).__tostring then res = tostring(res) end
    if type(res) ~= "string" then return nil, path .. ": raised a " .. type(res) .. " while loading" end
    local name = res:match("attempt to call a nil value %(global '([%w_]+)'%)")
    if name then -- most often a misspelt scorer
      res = res .. "; the scorers are " .. table.concat(scorers.names, ", ") .. " (and case_field, suite)"
    end
    return nil, res
  end
  local expected = 'expected suite "name" { dataset = ..., run = ..., scorers = {...} }'
  if res == nil then
    return nil, string.format("%s: returned nil, %s (is the `return` missing?)", path, expected)
  end
  if M.is_suite(res) then return {res} end
  if type(res) == "table" and #res > 0 then
    for i = 1, #res do
      if not M.is_suite(res[i]) then
        return nil, string.format("%s: returned a list whose item %d is a %s, %s", path, i, type(res[i]), expected)
      end
    end
    return res
  end
  if type(res) == "function" then
    return nil, string.format('%s: returned a function, %s (suite "name" needs its table: suite "name" { ... })',
                              path, expected)
  end
  return nil, string.format("%s: returned a %s, %s", path, type(res), expected)
end

-- --- running a case -----------------------------------------------------------

local describe_error = output.describe_error
M.describe_error = describe_error

-- A value as the JSON text the store keeps, encoded once, here (the host
-- stores the text as it is); what JSON cannot hold (a function, NaN) is
-- kept as its tostring.
local function to_json(v)
  if v == nil then return nil end
  local ok, j = pcall(cjson.encode, v)
  if ok then return j end
  return cjson.encode(tostring(v))
end
M.to_json = to_json

local function totals(ctx)
  local f = ctx.totals
  if not f then return nil end
  local ok, t = pcall(f, ctx)
  if ok and type(t) == "table" then return t end
  return nil
end

-- Cost of a trace so far from ctx:totals(), whose cost_usd sums every
-- priced call, replayed ones included: returns total (nil when unknown),
-- live, replayed.
local function split_cost(t)
  if not t then return nil, nil, nil end
  if t.llm_calls == 0 then return 0, 0, 0 end
  local total, rep = t.cost_usd, t.replayed_cost_usd or 0
  if total == nil then return nil, nil, rep end
  return total, total - rep, rep
end
M.split_cost = split_cost

-- The latency a case would have had live, from its measured time and the
-- replay timing of its trace (llm.take_replay_timing): each replayed
-- call's replay time is replaced by its recorded latency. Exact for calls
-- made one after another; calls a case overlaps (parallel, llm.map) are
-- counted as if made in turn, an upper bound. Returns the latency and a
-- note saying so, or nil, nil and why it is unknown (a call recorded
-- without its latency); the measured time when nothing was replayed.
function M.replay_latency(measured, t)
  if not t or t.calls == 0 then return measured end
  local calls = string.format("%d replayed LLM call%s", t.calls, t.calls == 1 and "" or "s")
  if t.unknown > 0 then
    return nil, nil, string.format("%d of its %s %s recorded without its latency (by an older moonspan); "
                                   .. "record the suite again with --record", t.unknown, calls,
                                   t.unknown == 1 and "was" or "were")
  end
  return math.max(measured - t.replay_ms, 0) + t.recorded_ms,
         string.format("%s timed as recorded, %s, not as replayed, %s", calls, moonspan.fmt_ms(t.recorded_ms),
                       moonspan.fmt_ms(t.replay_ms))
end

local function take_replay_timing(trace_id)
  return require("moonspan.llm").take_replay_timing(trace_id)
end

-- Runs one case (repetition k) of suite S as its own trace. Returns the
-- result record. (A signal is not caught here: the host keeps raising it
-- until the run has unwound, and its on_exit closes the eval run.)
function M.run_case(S, case, k, run_id, opts)
  opts = opts or {}
  local rec = {case_id = case.id, repeat_index = k, input = case.input, expected = case.expected,
               scores = {}, pass = false}
  if rec.input == nil then
    rec.input = {}
    for key, v in pairs(case) do
      if key ~= "id" and key ~= "expected" then rec.input[key] = v end
    end
  end
  local attrs = {case_id = case.id, repeat_index = k, eval_run = run_id}
  local ok, err = pcall(moonspan._case_trace, "eval:" .. S.name .. ":" .. case.id, attrs, function(ctx)
    rec.trace_id = ctx.id
    local t0 = moonspan.now_ms()
    local rok, out = pcall(S.run, case, {repeat_index = k, trace_id = ctx.id})
    local measured_ms = moonspan.now_ms() - t0
    local latency_note, latency_unknown
    rec.latency_ms, latency_note, latency_unknown = M.replay_latency(measured_ms, take_replay_timing(ctx.id))
    rec.gate_steps = gates.collect(S.gates, ctx)
    local before = totals(ctx)
    if not rok then
      rec.error = describe_error(out)
      local total, live, rep = split_cost(before)
      rec.cost_usd, rec.live_cost_usd, rec.replayed_cost_usd = total, live, rep
      if before then
        rec.input_tokens, rec.output_tokens = before.input_tokens, before.output_tokens
        rec.replayed = (before.replayed_calls or 0) > 0
      end
      error(out, 0) -- the trace records it as failed, with run()'s error
    end
    rec.output = out
    local info = {latency_ms = rec.latency_ms, latency_note = latency_note, latency_unknown = latency_unknown,
                  measured_latency_ms = measured_ms, trace_id = ctx.id, trace = ctx, repeat_index = k,
                  cost_usd = (split_cost(before)), input_tokens = before and before.input_tokens,
                  output_tokens = before and before.output_tokens,
                  cost_note = not before and "this moonspan cannot measure a trace's cost (no ctx:totals)" or nil}
    local pass = true
    for _, sc in ipairs(S.scorers) do
      local sok, res = pcall(span, "eval.score:" .. sc.name, function(s)
        local r = scorers.apply(sc, out, case, info)
        s:set("eval.score", r.score)
        s:set("eval.pass", r.pass)
        return r
      end)
      if not sok then
        local msg = describe_error(res)
        -- a scorer that says who it is (llm_judge: could not parse ...) is not prefixed again
        if msg:sub(1, #sc.name + 2) ~= sc.name .. ": " then msg = sc.name .. " raised: " .. msg end
        res = {name = sc.name, score = 0, reason = msg, pass = false, error = true}
        rec.error = rec.error or msg
      end
      rec.scores[#rec.scores + 1] = res
      if not res.pass then
        pass = false
        rec.reason = rec.reason or (res.error and res.reason or (res.name .. ": " .. res.reason))
      end
    end
    rec.pass = pass
    ctx:set("eval.pass", pass)
    local after = totals(ctx)
    local total, live, rep = split_cost(after)
    rec.cost_usd, rec.live_cost_usd, rec.replayed_cost_usd = total, live, rep
    if after then
      rec.input_tokens, rec.output_tokens = after.input_tokens, after.output_tokens
      rec.replayed = (after.replayed_calls or 0) > 0
    end
  end)
  if not ok then
    rec.pass = false
    rec.error = rec.error or describe_error(err)
    rec.reason = rec.reason or rec.error
  end
  take_replay_timing(rec.trace_id) -- what the scorers' calls left
  rec.replayed = rec.replayed or (rec.replayed_cost_usd or 0) > 0
  rec.input_json, rec.expected_json = to_json(rec.input), to_json(rec.expected)
  rec.output_json, rec.scores_json = to_json(rec.output), to_json(rec.scores)
  return rec
end

-- Runs every case of S `repeat_count` times with at most `concurrency`
-- in flight. on_done(rec, index) is called as each finishes. Returns the
-- records in case order (repetitions of a case together).
function M.run_cases(S, cases, opts, run_id, on_done)
  local jobs = {}
  for _, c in ipairs(cases) do
    for k = 1, opts.repeat_count or 1 do jobs[#jobs + 1] = {case = c, k = k} end
  end
  local results, next_i = {}, 1
  local function worker()
    while next_i <= #jobs do
      local i = next_i
      next_i = i + 1
      local rec = M.run_case(S, jobs[i].case, jobs[i].k, run_id, opts)
      results[i] = rec
      if on_done then on_done(rec, i) end
    end
  end
  local workers = {}
  for w = 1, math.min(opts.concurrency or 4, #jobs) do workers[w] = worker end
  for _, r in ipairs(sched.run(workers)) do
    if not r[1] then error(r[2], 0) end
  end
  return results
end

-- --- summaries ----------------------------------------------------------------

-- Exact percentiles by linear interpolation between closest ranks (numpy's
-- default); the host's moonspan.percentiles when it has one.
function M.percentiles(values, ps)
  local out = {}
  if #values == 0 then return out end
  if moonspan and moonspan.percentiles then return moonspan.percentiles(values, ps) end
  local x = {}
  for i, v in ipairs(values) do x[i] = v end
  table.sort(x)
  for i, p in ipairs(ps) do
    local rank = p / 100 * (#x - 1)
    local lo = math.floor(rank)
    local frac = rank - lo
    local a, b = x[lo + 1], x[math.min(lo + 2, #x)]
    out[i] = a + (b - a) * frac
  end
  return out
end

-- Live and replayed cost of one result (works for results read back from
-- the store, which carry cost_usd and replayed only).
local function result_costs(r)
  if r.cost_usd == nil then return nil, nil end
  if r.live_cost_usd ~= nil or r.replayed_cost_usd ~= nil then
    return r.live_cost_usd or 0, r.replayed_cost_usd or 0
  end
  if r.replayed then return 0, r.cost_usd end
  return r.cost_usd, 0
end

-- Summary of a list of results. opts: threshold (default 1), fail_under,
-- percentiles (function). Pass rate is over executions (cases x repeats);
-- per_case gives each case's passes out of its runs.
function M.summarize(results, opts)
  opts = opts or {}
  local n, passed, errors = #results, 0, 0
  local lat, live, replayed, unknown, tin, tout = {}, 0, 0, 0, 0, 0
  local by_case, order = {}, {}
  for _, r in ipairs(results) do
    if r.pass then passed = passed + 1 end
    if r.error then errors = errors + 1 end
    if type(r.latency_ms) == "number" then lat[#lat + 1] = r.latency_ms end
    local l, rp = result_costs(r)
    if l == nil then
      unknown = unknown + 1
    else
      live, replayed = live + l, replayed + rp
    end
    tin = tin + (r.input_tokens or 0)
    tout = tout + (r.output_tokens or 0)
    local c = by_case[r.case_id]
    if not c then
      c = {id = r.case_id, runs = 0, passes = 0}
      by_case[r.case_id] = c
      order[#order + 1] = c
    end
    c.runs = c.runs + 1
    if r.pass then c.passes = c.passes + 1 end
  end
  local flaky, failing, max_runs = {}, {}, 0
  for _, c in ipairs(order) do
    c.flaky = c.passes > 0 and c.passes < c.runs
    if c.flaky then flaky[#flaky + 1] = c end
    if c.passes == 0 then failing[#failing + 1] = c end
    if c.runs > max_runs then max_runs = c.runs end
  end
  local pct = #lat > 0 and (opts.percentiles or M.percentiles)(lat, {50, 95}) or {}
  local rate = n > 0 and passed / n or nil
  local threshold = opts.threshold or 1
  local failed_gate = rate == nil or rate < threshold - 1e-9
                      or (opts.fail_under ~= nil and rate < opts.fail_under - 1e-9)
  return {
    cases = n, passed = passed, failed = n - passed, errors = errors, pass_rate = rate,
    p50_ms = pct[1], p95_ms = pct[2],
    cost_usd = (unknown < n or n == 0) and live or nil, unknown_cost = unknown, replayed_cost_usd = replayed,
    input_tokens = tin, output_tokens = tout,
    threshold = threshold, fail_under = opts.fail_under,
    status = failed_gate and "failed" or "passed",
    per_case = order, flaky = flaky, always_failing = failing, repeat_count = max_runs,
  }
end

-- Whether each case passed on every run: case id -> bool, plus the ids in order.
local function case_outcomes(results)
  local st, order = {}, {}
  for _, r in ipairs(results) do
    if st[r.case_id] == nil then
      order[#order + 1] = r.case_id
      st[r.case_id] = true
    end
    if not r.pass then st[r.case_id] = false end
  end
  return st, order
end

local function delta(a, b)
  if a == nil or b == nil then return nil end
  return b - a
end

-- Compares this run's results with a baseline run's. The baseline's
-- figures are taken over the cases both runs have (so a --filter run is
-- compared like for like); cases only in one run are listed apart.
-- A regression is a case that newly fails or a lower pass rate.
function M.diff(current, baseline, opts)
  opts = opts or {}
  local cur, cur_order = case_outcomes(current)
  local base, base_order = case_outcomes(baseline)
  local common = {}
  for _, r in ipairs(baseline) do
    if cur[r.case_id] ~= nil then common[#common + 1] = r end
  end
  local sopts = {percentiles = opts.percentiles}
  local before, after = M.summarize(common, sopts), M.summarize(current, sopts)
  local d = {before = before, after = after, newly_failing = {}, newly_passing = {}, added = {}, removed = {}}
  for _, id in ipairs(cur_order) do
    if base[id] == nil then
      d.added[#d.added + 1] = id
    elseif base[id] and not cur[id] then
      d.newly_failing[#d.newly_failing + 1] = id
    elseif not base[id] and cur[id] then
      d.newly_passing[#d.newly_passing + 1] = id
    end
  end
  for _, id in ipairs(base_order) do
    if cur[id] == nil then d.removed[#d.removed + 1] = id end
  end
  d.pass_rate_delta = delta(before.pass_rate, after.pass_rate)
  d.p50_delta_ms = delta(before.p50_ms, after.p50_ms)
  d.p95_delta_ms = delta(before.p95_ms, after.p95_ms)
  -- cost per case run (runs may differ in --repeat), live + replayed: a
  -- replayed run costs what its recording did
  local function per_case(s)
    if s.cost_usd == nil or s.cases == 0 then return nil end
    return (s.cost_usd + s.replayed_cost_usd) / s.cases
  end
  local bc, ac = per_case(before), per_case(after)
  d.cost_before, d.cost_after, d.cost_delta_usd = bc, ac, delta(bc, ac)
  -- a regression is what the statistics say it is (eval_compare.lua):
  -- a case that newly fails may well be noise
  d.stats = compare.paired(current, baseline)
  d.regressed = compare.regressed(d.stats, opts.gate)
  return d
end

-- --- progress -------------------------------------------------------------------

function M.fmt_eta(ms)
  local sec = math.floor(ms / 1000 + 0.5)
  if sec < 1 then return "<1s" end
  if sec < 60 then return sec .. "s" end
  if sec < 3600 then return string.format("%dm%02ds", sec // 60, sec % 60) end
  return string.format("%dh%02dm", sec // 3600, sec % 3600 // 60)
end

-- Progress on stderr: on a terminal one line rewritten in place (done/total,
-- pass rate, cost, ETA); otherwise one line per finished case.
function M.progress(suite_name, total, opts)
  local p = {done = 0, passed = 0, cost = 0, t0 = moonspan.now_ms()}
  local out = M.stderr
  local tty = opts.tty
  local rc = opts.repeat_count or 1
  function p.update(rec)
    p.done = p.done + 1
    if rec.pass then p.passed = p.passed + 1 end
    p.cost = p.cost + (rec.cost_usd or 0)
    if tty then
      local elapsed = moonspan.now_ms() - p.t0
      local eta = p.done < total and (elapsed / p.done * (total - p.done)) or 0
      local width = 20
      local fill = math.floor(width * p.done / total)
      out:write(string.format("\r\27[K%s [%s%s] %d/%d  pass %s  %s  ETA %s", shown(suite_name), string.rep("#", fill),
                              string.rep(".", width - fill), p.done, total, fmt_pct(p.passed / p.done), fmt_usd(p.cost),
                              M.fmt_eta(eta)))
    else
      out:write(string.format("[%d/%d] %s %s %s  %s%s\n", p.done, total, rec.pass and "pass" or "FAIL",
                              shown(suite_name), shown(case_label(rec, rc)), fmt_ms(rec.latency_ms),
                              rec.pass and "" or ("  " .. shown(rec.reason or rec.error, 100))))
    end
    out:flush()
  end
  function p.finish()
    if tty and p.done > 0 then
      out:write("\r\27[K")
      out:flush()
    end
  end
  return p
end


-- --- main -----------------------------------------------------------------------

local REPLAY_MISS = {fail = true, live = true, record = true}

local function check_opts(opts)
  if type(opts) ~= "table" then return nil, "main: expected an options table" end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  if type(o.files) ~= "table" or #o.files == 0 then
    return nil, "no suite file given; usage: moonspan eval SUITE.lua... [--concurrency N] [--repeat K] ..."
  end
  o.concurrency = o.concurrency or 4
  if math.type(o.concurrency) ~= "integer" or o.concurrency < 1 then
    return nil, "--concurrency must be an integer >= 1, got " .. tostring(opts.concurrency)
  end
  o.repeat_count = o.repeat_count or 1
  if math.type(o.repeat_count) ~= "integer" or o.repeat_count < 1 then
    return nil, "--repeat must be an integer >= 1, got " .. tostring(opts.repeat_count)
  end
  if o.fail_under ~= nil and (type(o.fail_under) ~= "number" or o.fail_under < 0 or o.fail_under > 1) then
    return nil, "--fail-under must be a pass rate between 0 and 1 (0.9 = 90%), got " .. tostring(opts.fail_under)
  end
  if o.filter ~= nil and type(o.filter) ~= "string" then return nil, "--filter must be a glob" end
  if o.baseline ~= nil then o.baseline = tostring(o.baseline) end
  if o.fail_if_regressed ~= nil and o.fail_if_regressed ~= false then
    local gate, gerr = compare.parse_gate(o.fail_if_regressed)
    if not gate then return nil, gerr end
    if o.baseline == nil then
      return nil, "--fail-if-regressed needs a run to compare with: add --baseline last (or --baseline RUN_ID)"
    end
    o.gate = gate
  end
  if o.replay ~= nil then o.replay = tostring(o.replay) end
  if o.replay_miss ~= nil then
    if o.replay == nil then
      return nil, "--replay-miss needs --replay RUN_ID|last: it says what a replayed run does with a call "
                  .. "its recording lacks"
    end
    if not REPLAY_MISS[o.replay_miss] then
      return nil, "--replay-miss must be fail, live or record, got " .. tostring(o.replay_miss)
    end
  end
  return o
end

local function find_run(store, suite, which)
  local ok, id, msg = pcall(store.find_run, suite, which, nil)
  if not ok then return nil, describe_error(id) end
  if id == nil then return nil, msg or "no such run" end
  return id
end

local function git_commit()
  if moonspan.git_commit then
    local ok, sha = pcall(moonspan.git_commit)
    if ok and type(sha) == "string" and sha ~= "" then return sha end
  end
  return nil
end

-- Runs one planned suite: begin_run, the cases, finish_run, the baseline
-- diff. Returns its report.
function M.run_plan(plan, o, store)
  local S = plan.suite
  local llm_mod = require "moonspan.llm"
  -- --replay-miss record makes a replay a recording too: its misses
  -- answered live, its replayed answers copied, so it replays whole
  local miss = plan.replay_of and (o.replay_miss or "fail") or nil
  local records = o.record or miss == "record"
  local config = {concurrency = o.concurrency, repeat_count = o.repeat_count, filter = o.filter,
                  fail_under = o.fail_under, baseline = o.baseline, replay = o.replay, record = records,
                  replay_miss = miss,
                  cases = #plan.cases, dataset = type(S.dataset) == "string" and S.dataset or "inline",
                  files = o.files, host_version = moonspan.version}
  local run_id = store.begin_run{suite = S.name, suite_file = plan.file, git_commit = o.git_commit,
                                 config_json = to_json(config),
                                 threshold = S.threshold, replay_of = plan.replay_of, record = records}
  local saved = {llm_mod.record_run, llm_mod.replay_run, llm_mod.replay_miss, llm_mod.replay_counts}
  local counts = plan.replay_of and {replayed = 0, missed = 0, live = 0} or nil
  if records then llm_mod.record_run = run_id end
  if plan.replay_of then
    llm_mod.replay_run, llm_mod.replay_miss, llm_mod.replay_counts = plan.replay_of, miss, counts
  end
  local started_at = os.date("!%Y-%m-%dT%H:%M:%S")
  local progress = M.progress(S.name, #plan.cases * o.repeat_count, o)
  local t0 = moonspan.now_ms()
  local done = {}
  local function on_done(rec)
    store.add_result(run_id, rec)
    done[#done + 1] = rec
    progress.update(rec)
  end
  -- However the run ends before finish_run (os.exit in a case, a signal,
  -- a bug), the host's on_exit closes this eval run as failed with what
  -- finished, and makes the exit status say so.
  local sopts = {threshold = S.threshold, fail_under = o.fail_under}
  local function close_failed()
    local s = M.summarize(done, sopts)
    store.finish_run(run_id, {cases = s.cases, passed = s.passed, pass_rate = s.pass_rate, p50_ms = s.p50_ms,
                              p95_ms = s.p95_ms, cost_usd = s.cost_usd, replayed_cost_usd = s.replayed_cost_usd,
                              status = "failed"})
    return 1
  end
  local cancel = moonspan.on_exit(close_failed)
  local results = M.run_cases(S, plan.cases, {concurrency = o.concurrency, repeat_count = o.repeat_count},
                              run_id, on_done)
  cancel()
  local wall = moonspan.now_ms() - t0
  progress.finish()
  llm_mod.record_run, llm_mod.replay_run, llm_mod.replay_miss, llm_mod.replay_counts = table.unpack(saved, 1, 4)
  local s = M.summarize(results, sopts)
  local gate_results = gates.evaluate(S.gates, results)
  if #gate_results > 0 then
    s.gates, s.gates_failed = gate_results, 0
    for _, g in ipairs(gate_results) do
      if not g.pass then s.gates_failed = s.gates_failed + 1 end
    end
    if s.gates_failed > 0 then s.status = "failed" end
    config.gates = gate_results
  end
  local rep = {suite = S, file = plan.file, run_id = run_id, results = results, summary = s, wall_ms = wall,
               started_at = started_at,
               repeat_count = o.repeat_count, baseline_id = plan.baseline_id, baseline_note = plan.baseline_note,
               baseline_text = plan.baseline_text,
               replay = counts and {of = plan.replay_of, miss = miss, counts = counts, recorded_in = records and run_id}}
  -- The comparison is made before the run is closed, so that the run's
  -- stored config keeps it (config.comparison: what `moonspan ui` shows
  -- for this run, the very numbers printed below); an error in it is
  -- raised once the run is closed.
  local diff_ok, diff_err = true, nil
  if plan.baseline_id then
    local bok, base = pcall(store.results, plan.baseline_id)
    if bok and type(base) == "table" then
      diff_ok, diff_err = pcall(function()
        rep.diff = M.diff(results, base, {gate = o.gate})
        rep.diff.first_changes = M.first_changes(rep.diff.stats, store, o.repeat_count)
      end)
      if diff_ok then
        config.comparison = compare.stored(rep.diff.stats, plan.baseline_id, rep.diff.first_changes)
      end
    else
      rep.baseline_note = "cannot read eval run " .. tostring(plan.baseline_id) .. ": " .. describe_error(base)
    end
  end
  store.finish_run(run_id, {cases = s.cases, passed = s.passed, pass_rate = s.pass_rate, p50_ms = s.p50_ms,
                            p95_ms = s.p95_ms, cost_usd = s.cost_usd, replayed_cost_usd = s.replayed_cost_usd,
                            status = s.status,
                            config_json = (s.gates or config.comparison) and to_json(config) or nil})
  if not diff_ok then error(diff_err, 0) end
  if o.gate then
    local names = {}
    for _, m in ipairs(compare.METRICS) do
      if o.gate[m] then names[#names + 1] = m end
    end
    local what = table.concat(names, ",")
    if not rep.diff then
      rep.gate_text = string.format("--fail-if-regressed=%s: nothing to compare with, not failed", what)
    elseif rep.diff.regressed then
      local hit = {}
      for _, m in ipairs(compare.METRICS) do
        if o.gate[m] and rep.diff.stats.regressed_metrics[m] then hit[#hit + 1] = m end
      end
      rep.gate_failed = true
      rep.gate_text = string.format("--fail-if-regressed=%s: FAILED, regressed against eval run %s: %s", what,
                                    tostring(rep.baseline_id), table.concat(hit, ", "))
    else
      rep.gate_text = string.format("--fail-if-regressed=%s: passed, no evidence of change for the worse against "
                                    .. "eval run %s", what, tostring(rep.baseline_id))
    end
  end
  return rep
end

-- For the pairs that got worse (at most FIRST_CHANGES of them), the
-- first span of the case's trace that changed against its baseline
-- trace (store.first_change, telemetry/ms_trace_diff.c): {{label, why,
-- text}}. Nothing when this moonspan's store cannot tell.
M.FIRST_CHANGES = 10
function M.first_changes(st, store, repeat_count)
  local out = {}
  if not store.first_change or #st.worse == 0 then return out end
  if moonspan.flush then pcall(moonspan.flush) end -- this run's traces, committed
  for _, w in ipairs(st.worse) do
    if #out >= M.FIRST_CHANGES then break end
    local label = case_label(w.current, repeat_count)
    local text
    if w.baseline.trace_id and w.current.trace_id then
      local ok, ch, msg = pcall(store.first_change, w.baseline.trace_id, w.current.trace_id)
      if not ok then
        text = "cannot compare the traces: " .. describe_error(ch)
      elseif ch then
        text = "first change: " .. ch.text
      else -- the whole rule is in the README; once per case is enough here
        text = msg and msg:match("^no span changed beyond noise") or msg or "no span changed beyond noise"
      end
    else
      text = "no trace to compare"
    end
    out[#out + 1] = {label = label, why = w.why, text = text}
  end
  return out
end

-- moonspan eval. opts: files, concurrency, repeat_count, filter, baseline,
-- fail_under, junit, alert_webhook, record, replay, tty. Returns the exit
-- code: 0 every suite passed, 1 one failed its threshold / --fail-under,
-- 2 bad input.
function M.main(opts)
  local o, err = check_opts(opts)
  if not o then
    errf("moonspan eval: %s", err)
    return 2
  end
  local store = moonspan.eval_store
  if not store then
    errf("moonspan eval: this moonspan has no eval store (moonspan.eval_store)")
    return 2
  end
  M.install_globals()
  -- scorers read a case's spans (spans(ctx)) even when its trace was cut into parts
  if moonspan.keep_spans then moonspan.keep_spans(true) end

  -- 1. every suite and its cases, before anything runs
  local plans, selected = {}, 0
  for _, file in ipairs(o.files) do
    local suites, lerr = M.load_file(file)
    if not suites then
      errf("moonspan eval: %s", lerr)
      return 2
    end
    for _, S in ipairs(suites) do
      local cases, cerr = M.load_cases(S, function(msg) errf("moonspan eval: note: %s", msg) end)
      if not cases then
        errf("moonspan eval: %s", cerr)
        return 2
      end
      local picked = M.filter_cases(cases, o.filter)
      selected = selected + #picked
      plans[#plans + 1] = {suite = S, file = file, cases = picked, total = #cases}
    end
  end
  if selected == 0 then
    errf("moonspan eval: --filter %s matches no case id", o.filter or "")
    return 2
  end

  -- 2. what to replay and compare with
  for _, plan in ipairs(plans) do
    if #plan.cases > 0 then
      if o.replay then
        local id, msg = find_run(store, plan.suite.name, o.replay)
        if not id then
          errf('moonspan eval: --replay %s: suite "%s": %s', o.replay, plan.suite.name, msg)
          return 2
        end
        -- a replay of a replay answers from the same recording
        local run = store.run(id)
        while run and not run.recorded and run.replay_of do run = store.run(run.replay_of) end
        if not (run and run.recorded) then
          errf('moonspan eval: --replay %s: eval run %d of suite "%s" did not record its LLM calls; '
               .. 'run the suite with --record first, then replay that run', o.replay, id, plan.suite.name)
          return 2
        end
        plan.replay_of = run.id
      end
      if o.baseline then
        local S = plan.suite
        local sel = baseline.selection(plan.cases, type(S.dataset) == "string" and S.dataset or "inline", o)
        if o.baseline == "last" then
          local choice, text = baseline.last(store, S.name, sel)
          if choice then
            plan.baseline_id, plan.baseline_text = choice.id, text
          else
            plan.baseline_note = text
            errf('moonspan eval: note: --baseline last: suite "%s": %s', S.name, text)
          end
        else
          local id, msg = find_run(store, S.name, o.baseline)
          if not id then
            errf('moonspan eval: --baseline %s: suite "%s": %s', o.baseline, S.name, msg)
            return 2
          end
          local text, warning = baseline.explicit(store, id, sel)
          plan.baseline_id, plan.baseline_text = id, text
          if warning then errf('moonspan eval: warning: --baseline %s: suite "%s": %s', o.baseline, S.name, warning) end
        end
      end
    end
  end

  -- 3. run
  o.git_commit = git_commit()
  local reports = {}
  for _, plan in ipairs(plans) do
    if #plan.cases == 0 then
      errf('moonspan eval: note: suite "%s": --filter %s matches none of its %d cases; skipped', plan.suite.name,
           o.filter, plan.total)
    else
      reports[#reports + 1] = M.run_plan(plan, o, store)
    end
  end

  -- 4. report
  M.stdout:write(M.render(reports))
  M.stdout:flush()
  local code = 0
  for _, rep in ipairs(reports) do
    if rep.summary.status == "failed" then code = 1 end
    if rep.gate_failed then code = 1 end
  end
  if o.junit then
    local ok, jerr = junit.write(o.junit, junit.xml(M.junit_suites(reports)))
    if not ok then
      errf("moonspan eval: --junit: %s", jerr)
      code = 2
    end
  end
  if o.alert_webhook then
    local tok, text = pcall(M.alert_text, reports, {git_commit = o.git_commit})
    if not tok then
      errf("moonspan eval: the alert could not be built (the results above stand): %s", describe_error(text))
    elseif text then
      local ok, aerr = M.post_alert(o.alert_webhook, text, {backoff_ms = o.alert_backoff_ms})
      if ok then
        errf("moonspan eval: alert sent to the webhook")
      else
        errf("moonspan eval: the alert could not be sent (the results above stand): %s", aerr)
      end
    end
  end
  return code
end

return M
