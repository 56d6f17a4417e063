-- Scorers for eval suites (moonspan.scorers): each judges one case's
-- output and gives a score in [0, 1] with a reason.
--
--   exact(x)               output equals x (strings, numbers, booleans; tables compared deeply)
--   contains(x[, {ignore_case = true}])   the output text contains x (plain text, not a pattern)
--   regex(pattern)         the output text matches a *Lua pattern* (%d, %a, ... ; not PCRE:
--                          no \d, no |, no {n}); the match may be anywhere unless you anchor it with ^ / $
--   json_valid()           the output is JSON text (a table output counts when it encodes)
--   json_field(path[, x])  the output's JSON has `path` ("answer.city", "items.1.name": segments
--                          separated by dots, list indexes 1-based as in Lua); with x, the value
--                          there equals x, without x it only has to be present and not null
--   max_latency_ms(n)      run() took at most n ms
--   max_cost_usd(x)        run()'s LLM calls cost at most x dollars (an unknown price fails)
--   llm_judge{model =, rubric =, pass_at = 0.7, ...}   an LLM grades the output against the
--                          rubric; the other fields go to llm.call (provider, mock, temperature...).
--                          A reply it cannot parse is an error of the scorer, not a score of 0.
--
-- Span-level scorers judge what the case did, from its spans (moonspan.case_spans); a
-- step is a span name, or a path when it has a "/" ("retrieve/generate"); a step that
-- never ran fails, saying so:
--   span_p95(step, ms)     the p95 duration of the step's spans is at most ms
--   max_retries(n)         no span retried more than n times (retry() and llm.call record retries)
--   no_error_spans()       no span of the case failed
--   max_step_tokens(step, n)   each call of the step used at most n tokens (input + output,
--                          its LLM calls and those nested in it)
--   max_step_cost(step, usd)   each call of the step cost at most usd (nested calls included;
--                          an unknown price fails)
--   function(output, case, ctx) -> score, reason       your own: score a number in [0, 1] or a
--                          boolean; reason an optional string; named after where it is
--                          defined ("suite.lua:12")
--   {name =, pass_at =, score = function(output, case, ctx) ... end}   the same, named, with its
--                          own pass threshold (name defaults to where score is defined)
--
-- x (and the rubric) may be a value or an accessor, a function(case) -> value, such as
-- case_field "expected" (a dotted path works too: case_field "meta.city").
--
-- Pass rule: a case passes when every scorer's score reaches its pass threshold: 1 for the
-- built-ins (they score 0 or 1), pass_at for llm_judge (default 0.7), 0.5 for a function
-- returning a number, and `true` for a function returning a boolean.
--
-- ctx, the third argument of function scorers, holds what the case measured: latency_ms (of
-- run()), cost_usd (run()'s calls, live plus replayed; nil when unknown), input_tokens,
-- output_tokens, trace_id, repeat_index, and trace (the case's trace context); spans(ctx)
-- lists the case's spans (moonspan.case_spans). Under --replay latency_ms is the latency
-- the case would have had live (replayed calls timed as recorded), latency_note says so,
-- and latency_unknown says why it is nil when it cannot be.

local cjson = require "cjson"
local case_spans = require "moonspan.case_spans"

local S = {}

local SCORER = {__name = "moonspan.scorer"}
S.SCORER = SCORER

local accessors = setmetatable({}, {__mode = "k"}) -- accessor function -> description
local constructors = {}                            -- constructor function -> its name

local function new(fields)
  return setmetatable(fields, SCORER)
end

function S.is_scorer(x)
  return getmetatable(x) == SCORER
end

-- --- helpers --------------------------------------------------------------

-- A short, one-line rendering of a value for reasons.
local function short(v, max)
  max = max or 60
  local s
  if type(v) == "string" then
    s = v
  elseif type(v) == "table" then
    local ok, j = pcall(cjson.encode, v)
    s = ok and j or tostring(v)
  else
    s = tostring(v)
  end
  s = s:gsub("[\r\n\t]+", " ")
  if #s > max then s = s:sub(1, max - 3) .. "..." end
  if type(v) == "string" then return '"' .. s .. '"' end
  return s
end
S.short = short

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
S.deep_equal = deep_equal

-- Walks a dotted path ("a.b.1") through nested tables; numeric segments
-- also index lists (1-based). Returns the value, or nil and the part that
-- was missing.
local function walk(t, path)
  local v = t
  local so_far = {}
  for seg in path:gmatch("[^.]+") do
    so_far[#so_far + 1] = seg
    if type(v) ~= "table" then return nil, table.concat(so_far, ".") end
    local nv = v[seg]
    if nv == nil and seg:match("^%d+$") then nv = v[tonumber(seg)] end
    if nv == nil or nv == cjson.null then return nil, table.concat(so_far, ".") end
    v = nv
  end
  return v
end
S.walk = walk

-- case_field "expected" — an accessor reading a field of the case (dotted
-- paths reach into nested tables).
function S.case_field(path)
  if type(path) ~= "string" or path == "" then
    error('case_field: expected a field name, e.g. case_field "expected"', 2)
  end
  local f = function(case)
    return (walk(case, path))
  end
  accessors[f] = "case." .. path
  return f
end

-- A value or an accessor, resolved for one case.
local function resolve(x, case)
  if type(x) == "function" then return x(case) end
  return x
end

local function describe_x(x)
  if type(x) == "function" then return accessors[x] or "the accessor's value" end
  return short(x)
end

-- The output as text for contains/regex: strings as they are, numbers and
-- booleans through tostring, tables as JSON.
local function as_text(output)
  local t = type(output)
  if t == "string" then return output end
  if t == "number" or t == "boolean" then return tostring(output) end
  if t == "table" then
    local ok, j = pcall(cjson.encode, output)
    if ok then return j end
  end
  return nil
end

local function check_value_arg(name, x, level)
  if x == nil then
    error(string.format("%s: expected a value or an accessor such as case_field \"expected\", got nil", name),
          level + 1)
  end
end

local function check_number_arg(name, x, level)
  if type(x) ~= "function" and (type(x) ~= "number" or x ~= x or x < 0) then
    error(string.format("%s: expected a number >= 0 (or an accessor), got %s", name, short(x)), level + 1)
  end
end

-- --- built-in scorers -----------------------------------------------------

function S.exact(x)
  check_value_arg("exact", x, 2)
  return new{name = "exact", pass_at = 1, score = function(output, case)
    local want = resolve(x, case)
    if want == nil then
      error("exact: the expected value is nil (" .. describe_x(x) .. " is missing from the case)", 0)
    end
    if deep_equal(output, want) then return 1, "equal to " .. short(want) end
    local hint = ""
    if type(output) ~= type(want) then
      hint = string.format(" (a %s, expected a %s)", type(output), type(want))
    end
    return 0, string.format("expected %s, got %s%s", short(want), short(output), hint)
  end}
end

function S.contains(x, opts)
  check_value_arg("contains", x, 2)
  local ignore_case = type(opts) == "table" and opts.ignore_case
  return new{name = "contains", pass_at = 1, score = function(output, case)
    local want = resolve(x, case)
    if want == nil then
      error("contains: the expected text is nil (" .. describe_x(x) .. " is missing from the case)", 0)
    end
    want = as_text(want) or tostring(want)
    local text = as_text(output)
    if text == nil then return 0, "output is " .. (output == nil and "nil" or ("a " .. type(output))) end
    local hay, needle = text, want
    if ignore_case then hay, needle = hay:lower(), needle:lower() end
    if hay:find(needle, 1, true) then return 1, "contains " .. short(want) end
    return 0, string.format("output does not contain %s (got %s)", short(want), short(text))
  end}
end

function S.regex(pattern)
  if type(pattern) ~= "string" and type(pattern) ~= "function" then
    error("regex: expected a Lua pattern (a string such as \"^%d+$\"), got " .. short(pattern), 2)
  end
  if type(pattern) == "string" then
    local ok, err = pcall(string.find, "", pattern)
    if not ok then
      error(string.format("regex: %s is not a valid Lua pattern (%s)", short(pattern),
                          tostring(err):gsub("^.-:%d+: ", "")), 2)
    end
  end
  return new{name = "regex", pass_at = 1, score = function(output, case)
    local pat = resolve(pattern, case)
    if type(pat) ~= "string" then error("regex: the pattern is " .. short(pat) .. ", expected a string", 0) end
    local text = as_text(output)
    if text == nil then return 0, "output is " .. (output == nil and "nil" or ("a " .. type(output))) end
    if text:find(pat) then return 1, "matches " .. short(pat) end
    return 0, string.format("output does not match Lua pattern %s (got %s)", short(pat), short(text))
  end}
end

-- The output as decoded JSON: a table output is taken as it is.
local function as_json(output)
  if type(output) == "table" then
    local ok, err = pcall(cjson.encode, output)
    if not ok then return nil, "output is a table that does not encode as JSON (" .. tostring(err) .. ")" end
    return output
  end
  if type(output) ~= "string" then
    return nil, "output is " .. (output == nil and "nil" or ("a " .. type(output))) .. ", not JSON text"
  end
  local ok, v = pcall(cjson.decode, output)
  if not ok then return nil, "output is not JSON (" .. tostring(v) .. ")" end
  return v
end

function S.json_valid()
  return new{name = "json_valid", pass_at = 1, score = function(output)
    local v, err = as_json(output)
    if v == nil then return 0, err end
    return 1, "valid JSON"
  end}
end

function S.json_field(path, x)
  if type(path) ~= "string" or path == "" then
    error('json_field: expected a path such as "answer.city", got ' .. short(path), 2)
  end
  return new{name = "json_field", pass_at = 1, score = function(output, case)
    local doc, err = as_json(output)
    if doc == nil then return 0, err end
    local v, missing = walk(doc, path)
    if v == nil then
      return 0, string.format("%s is missing from the output%s", path,
                              missing ~= path and (" (no " .. missing .. ")") or "")
    end
    if x == nil then return 1, path .. " is present" end
    local want = resolve(x, case)
    if want == nil then
      error("json_field: the expected value is nil (" .. describe_x(x) .. " is missing from the case)", 0)
    end
    if deep_equal(v, want) then return 1, string.format("%s is %s", path, short(want)) end
    return 0, string.format("%s is %s, expected %s", path, short(v), short(want))
  end}
end

-- One decimal above a millisecond, so a latency just over its limit reads
-- as over it ("100.4 ms > 100.0 ms"); below, the report's units, where
-- "%.1f ms" would print 0.0.
local function fmt_ms(ms)
  if ms >= 1000 then return string.format("%.2f s", ms / 1000) end
  if ms < 1 and ms >= 0 then return moonspan.fmt_ms(ms) end
  return string.format("%.1f ms", ms)
end

function S.max_latency_ms(n)
  check_number_arg("max_latency_ms", n, 2)
  return new{name = "max_latency_ms", pass_at = 1, score = function(_, case, ctx)
    local limit = resolve(n, case)
    local ms = ctx and ctx.latency_ms
    if type(ms) ~= "number" then
      local why = ctx and ctx.latency_unknown
      error("max_latency_ms: the case's latency is unknown" .. (why and (": " .. why) or ""), 0)
    end
    local note = ctx.latency_note and (" (" .. ctx.latency_note .. ")") or ""
    if ms <= limit then return 1, string.format("latency %s <= %s%s", fmt_ms(ms), fmt_ms(limit), note) end
    return 0, string.format("latency %s > %s%s", fmt_ms(ms), fmt_ms(limit), note)
  end}
end

local function fmt_usd(x)
  if x == 0 then return "$0" end
  if x >= 0.01 then return string.format("$%.4f", x) end
  return string.format("$%.6f", x)
end
S.fmt_usd = fmt_usd

function S.max_cost_usd(x)
  check_number_arg("max_cost_usd", x, 2)
  return new{name = "max_cost_usd", pass_at = 1, score = function(_, case, ctx)
    local limit = resolve(x, case)
    local cost = ctx and ctx.cost_usd
    if cost == nil then
      return 0, string.format("cost unknown (%s), so it cannot be held under %s",
                              ctx and ctx.cost_note or "a model without a price", fmt_usd(limit))
    end
    if cost <= limit then return 1, string.format("cost %s <= %s", fmt_usd(cost), fmt_usd(limit)) end
    return 0, string.format("cost %s > %s", fmt_usd(cost), fmt_usd(limit))
  end}
end

-- --- span-level scorers ---------------------------------------------------

-- The argument checks of the span-level scorers, shared with the suite
-- gates (moonspan.gates): each raises at `level` above its caller.
local function check_step_arg(name, step, level)
  if type(step) ~= "string" or step == "" then
    error(string.format('%s: expected a step, a span name such as "generate" (or a path "retrieve/generate"), '
                        .. "got %s", name, short(step)), level + 1)
  end
end
S.check_step_arg = check_step_arg

local function check_limit_arg(name, x, what, level)
  if type(x) ~= "number" or x ~= x or x < 0 or x == math.huge then
    error(string.format("%s: expected %s (a number >= 0), got %s", name, what, short(x)), level + 1)
  end
end
S.check_limit_arg = check_limit_arg

-- The case's spans; raises (a scorer error) when there are none to read.
local function spans_of(name, ctx)
  if not (ctx and ctx.trace) then error(name .. ": the case has no trace to read spans from", 0) end
  return case_spans.spans(ctx)
end

S.spans = case_spans.spans

function S.span_p95(step, ms)
  check_step_arg("span_p95", step, 2)
  check_limit_arg("span_p95", ms, "a limit in ms", 2)
  return new{name = "span_p95", pass_at = 1, score = function(_, _, ctx)
    local list = spans_of("span_p95", ctx)
    local sel = case_spans.select(list, step)
    if #sel == 0 then return 0, case_spans.missing(list, step) end
    local p, approx = case_spans.p95(sel)
    local slowest = sel[1]
    for _, s in ipairs(sel) do
      if (s.max_ms or s.duration_ms) > (slowest.max_ms or slowest.duration_ms) then slowest = s end
    end
    local n = 0
    for _, s in ipairs(sel) do n = n + (s.count or 1) end
    local what = string.format("%s p95 %s%s over %d span%s", step, approx and "~" or "", fmt_ms(p), n,
                               n == 1 and "" or "s")
    if p <= ms then return 1, string.format("%s <= %s", what, fmt_ms(ms)) end
    return 0, string.format("%s > %s (slowest %s %s)", what, fmt_ms(ms), slowest.path,
                            fmt_ms(slowest.max_ms or slowest.duration_ms))
  end}
end

function S.max_retries(n)
  if math.type(n) ~= "integer" or n < 0 then
    error("max_retries: expected a whole number of retries >= 0, got " .. short(n), 2)
  end
  return new{name = "max_retries", pass_at = 1, score = function(_, _, ctx)
    local list = spans_of("max_retries", ctx)
    local worst, total = nil, 0
    for _, s in ipairs(list) do
      total = total + (s.retries or 0)
      if (s.retries or 0) > 0 and (not worst or s.retries > worst.retries) then worst = s end
    end
    if not worst then return 1, "no span retried" end
    local what = string.format("%s retried %d time%s%s", worst.path, worst.retries, worst.retries == 1 and "" or "s",
                               worst.retry_succeeded == false and " and still failed" or "")
    if worst.retries <= n then
      return 1, string.format("%s <= %d (%d retr%s in all)", what, n, total, total == 1 and "y" or "ies")
    end
    return 0, string.format("%s > %d", what, n)
  end}
end

function S.no_error_spans()
  return new{name = "no_error_spans", pass_at = 1, score = function(_, _, ctx)
    local list = spans_of("no_error_spans", ctx)
    local failed, first = 0, nil
    for _, s in ipairs(list) do
      local bad = s.status == "error" or (s.kind == "fold" and (s.errors or 0) > 0)
      if bad then
        failed = failed + 1
        -- where it was raised reads better than the spans it passed through
        if not first or (s.error_own and not first.error_own) then first = s end
      end
    end
    if failed == 0 then return 1, string.format("none of %d spans failed", #list) end
    local what
    if first.kind == "fold" then
      what = string.format("%s: %d of %d repetitions failed", first.path, first.errors, first.count)
    else
      what = string.format("%s failed: %s", first.path,
                           short((first.error_type and first.error_type ~= "error" and (first.error_type .. ": ") or "")
                                 .. (first.error or "?"), 100):gsub('^"(.*)"$', "%1"))
    end
    if failed > 1 then what = what .. string.format(" (%d spans failed)", failed) end
    return 0, what
  end}
end

-- The call of the step with the most of metric(usage) (tokens, cost), and
-- the first call whose metric is unknown (nil: a cost without a price).
-- Returns nil and a reason when the step never ran.
local function heaviest(name, step, ctx, metric)
  local list = spans_of(name, ctx)
  local sel = case_spans.select(list, step)
  if #sel == 0 then return nil, case_spans.missing(list, step) end
  local r = {n = #sel}
  for _, s in ipairs(sel) do
    local u = case_spans.usage(list, s)
    local v = metric(u)
    if v == nil then
      r.unknown = r.unknown or {s = s, u = u}
    elseif not r.s or v > r.v then
      r.s, r.u, r.v = s, u, v
    end
  end
  return r
end

function S.max_step_tokens(step, n)
  check_step_arg("max_step_tokens", step, 2)
  check_limit_arg("max_step_tokens", n, "a number of tokens", 2)
  return new{name = "max_step_tokens", pass_at = 1, score = function(_, _, ctx)
    local r, missing = heaviest("max_step_tokens", step, ctx, function(u) return u.input_tokens + u.output_tokens end)
    if not r then return 0, missing end
    local what = string.format("%s used %d tokens (%d in, %d out%s)", r.s.path, r.v, r.u.input_tokens,
                               r.u.output_tokens, r.u.estimated and ", estimated" or "")
    if r.u.llm_calls == 0 then what = r.s.path .. " used 0 tokens (no LLM call inside it)" end
    if r.n > 1 then what = what .. string.format(", the most of its %d calls", r.n) end
    if r.v <= n then return 1, string.format("%s <= %d", what, n) end
    return 0, string.format("%s > %d", what, n)
  end}
end

function S.max_step_cost(step, usd)
  check_step_arg("max_step_cost", step, 2)
  check_limit_arg("max_step_cost", usd, "a limit in dollars", 2)
  return new{name = "max_step_cost", pass_at = 1, score = function(_, _, ctx)
    local r, missing = heaviest("max_step_cost", step, ctx, function(u) return u.cost_usd end)
    if not r then return 0, missing end
    if r.unknown then
      return 0, string.format("%s cost unknown (%s has no price), so it cannot be held under %s", r.unknown.s.path,
                              r.unknown.u.unknown, fmt_usd(usd))
    end
    local what = string.format("%s cost %s", r.s.path, fmt_usd(r.v))
    if r.u.llm_calls == 0 then what = r.s.path .. " cost $0 (no LLM call inside it)" end
    if r.n > 1 then what = what .. string.format(", the most of its %d calls", r.n) end
    if r.v <= usd then return 1, string.format("%s <= %s", what, fmt_usd(usd)) end
    return 0, string.format("%s > %s", what, fmt_usd(usd))
  end}
end

-- --- llm_judge ------------------------------------------------------------

local JUDGE_OWN = {rubric = true, pass_at = true, name = true, prompt = true}

S.JUDGE_SYSTEM = "You are a strict, fair evaluator of an AI system's output. "
  .. "Reply with a JSON object only, no prose around it."

local function text_of(v)
  if type(v) == "string" then return v end
  local ok, j = pcall(cjson.encode, v)
  return ok and j or tostring(v)
end

-- The judge's prompt for one case.
function S.judge_prompt(rubric, case, output)
  local parts = {"Grade the output below against the rubric.", "", "Rubric:", rubric, ""}
  if case.input ~= nil then
    parts[#parts + 1] = "Input:"
    parts[#parts + 1] = text_of(case.input)
    parts[#parts + 1] = ""
  end
  if case.expected ~= nil then
    parts[#parts + 1] = "Reference answer:"
    parts[#parts + 1] = text_of(case.expected)
    parts[#parts + 1] = ""
  end
  parts[#parts + 1] = "Output to grade:"
  parts[#parts + 1] = output == nil and "(nothing)" or text_of(output)
  parts[#parts + 1] = ""
  parts[#parts + 1] = 'Answer with only this JSON: {"score": <a number from 0 to 1>, "reason": "<one sentence>"}'
  return table.concat(parts, "\n")
end

-- Parses a judge's reply: {"score": 0..1, "reason": "..."}, possibly in a
-- ```json fence or with prose around it. Returns score, reason; an
-- unusable reply gives nil and what is wrong with it (the scorer raises:
-- a judge that did not answer has not scored the case 0).
function S.parse_judgement(text)
  if type(text) ~= "string" then return nil, "judge gave no text" end
  local doc
  for _, c in ipairs{text, text:match("```%w*%s*(.-)%s*```") or "", text:match("(%b{})") or ""} do
    local ok, v = pcall(cjson.decode, c)
    if ok and type(v) == "table" then doc = v break end
  end
  if not doc then
    return nil, "it is not JSON {\"score\", \"reason\"}: " .. short(text, 80)
  end
  local score = doc.score
  if type(score) == "string" then score = tonumber(score) end
  if type(score) ~= "number" or score ~= score then
    return nil, "it has no numeric score: " .. short(text, 80)
  end
  if score < 0 or score > 1 then
    return nil, string.format("its score %s is outside 0..1: %s", tostring(score), short(text, 80))
  end
  local reason = doc.reason
  if type(reason) ~= "string" then reason = reason ~= nil and reason ~= cjson.null and tostring(reason) or "" end
  return score, reason ~= "" and reason or "(the judge gave no reason)"
end

function S.llm_judge(spec)
  if type(spec) ~= "table" then
    error('llm_judge: expected a table, e.g. llm_judge{model = "claude-haiku-4-5", rubric = "..."}', 2)
  end
  if type(spec.model) ~= "string" or spec.model == "" then
    error('llm_judge: model is required, e.g. llm_judge{model = "mock", rubric = "..."}', 2)
  end
  if type(spec.rubric) ~= "string" and type(spec.rubric) ~= "function" then
    error("llm_judge: rubric is required: the criteria the output is graded on (a string)", 2)
  end
  local pass_at = spec.pass_at or 0.7
  if type(pass_at) ~= "number" or pass_at < 0 or pass_at > 1 then
    error("llm_judge: pass_at must be a number in [0, 1], got " .. short(spec.pass_at), 2)
  end
  local name = spec.name or "llm_judge"
  return new{name = name, pass_at = pass_at, judge = true, score = function(output, case)
    local rubric = resolve(spec.rubric, case)
    local req = {model = spec.model, system = S.JUDGE_SYSTEM, temperature = 0,
                 messages = {{role = "user", content = S.judge_prompt(tostring(rubric), case, output)}}}
    for k, v in pairs(spec) do
      if not JUDGE_OWN[k] then req[k] = v end
    end
    local resp = (llm or require "moonspan.llm").call(req)
    local score, reason = S.parse_judgement(resp.text)
    if score == nil then error(name .. ": could not parse the judge's reply: " .. reason, 0) end
    return score, reason
  end}
end

-- --- turning a suite's `scorers` list into scorer objects -----------------

-- Where a function is defined, "suite.lua:12": the name of a scorer that
-- was given none, so a reason or a report row points at its code.
local function defined_at(fn)
  local info = debug.getinfo(fn, "S")
  if not info or info.what == "C" then return nil end
  local src = info.short_src:match("([^/]*)$")
  return string.format("%s:%d", src, info.linedefined)
end
S.defined_at = defined_at

-- Normalises one entry of a suite's scorers list; returns the scorer or
-- nil and a message.
function S.normalise(entry, i)
  if S.is_scorer(entry) then return entry end
  if type(entry) == "function" then
    if constructors[entry] then
      return nil, string.format("scorers[%d] is the constructor %s itself; call it: %s(...)", i,
                                constructors[entry], constructors[entry])
    end
    return new{name = defined_at(entry) or ("function#" .. i), pass_at = 0.5, custom = true, score = entry}
  end
  if type(entry) == "table" and type(entry.score) == "function" then
    local pass_at = entry.pass_at or 0.5
    if type(pass_at) ~= "number" or pass_at < 0 or pass_at > 1 then
      return nil, string.format("scorers[%d]: pass_at must be a number in [0, 1]", i)
    end
    if entry.name ~= nil and (type(entry.name) ~= "string" or entry.name == "") then
      return nil, string.format('scorers[%d]: name must be a non-empty string, e.g. {name = "cites_sources", '
                                .. "score = function(output, case, ctx) ... end}", i)
    end
    return new{name = entry.name or defined_at(entry.score) or ("scorer#" .. i), pass_at = pass_at,
               custom = true, score = entry.score}
  end
  return nil, string.format("scorers[%d]: unknown scorer type (%s); use a built-in such as contains(...), "
                            .. "a function(output, case, ctx) returning a score, or {score = function ... end}",
                            i, type(entry) == "table" and "a table without a score function" or ("a " .. type(entry)))
end

-- Runs one scorer on a case. Returns {name, score, reason, pass}; raises
-- when the scorer raises or returns something that is not a score.
function S.apply(scorer, output, case, ctx)
  local raw, reason = scorer.score(output, case, ctx)
  local score, pass
  if type(raw) == "boolean" then
    score, pass = raw and 1 or 0, raw
  elseif type(raw) == "number" and raw == raw then
    if raw < 0 or raw > 1 then
      error(string.format("%s returned %s, expected a score in [0, 1] or a boolean", scorer.name, tostring(raw)), 0)
    end
    score = raw
    pass = raw >= scorer.pass_at - 1e-12
  else
    error(string.format("%s returned %s, expected a score in [0, 1] or a boolean", scorer.name,
                        raw == nil and "nothing" or short(raw)), 0)
  end
  if reason ~= nil and type(reason) ~= "string" then reason = tostring(reason) end
  if reason == nil then
    reason = pass and "ok" or string.format("score %.3g below %.3g", score, scorer.pass_at)
  end
  return {name = scorer.name, score = score, reason = reason, pass = pass}
end

S.names = {"exact", "contains", "regex", "json_valid", "json_field", "max_latency_ms", "max_cost_usd",
           "llm_judge", "span_p95", "max_retries", "no_error_spans", "max_step_tokens", "max_step_cost"}
for _, n in ipairs(S.names) do constructors[S[n]] = n end

return S
