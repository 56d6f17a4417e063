-- moonspan.eval_output: what `moonspan eval` prints and sends: errors as
-- one text, the summary and its baseline lines, the failed-cases table,
-- the alert text and its webhook POST, the JUnit cases. Pure functions of
-- the results, so specs test them without a store.

local cjson = require "cjson"
local sched = require "moonspan.sched"
local wire = require "moonspan.wire"
local scorers = require "moonspan.scorers"
local gates = require "moonspan.gates"
local compare = require "moonspan.eval_compare"
local dataset = require "moonspan.eval_dataset"

local M = {}

-- --- errors -------------------------------------------------------------------

local function error_text(err)
  if type(err) == "string" then return err end
  if type(err) == "table" then
    local mt = getmetatable(err)
    if mt and mt.__tostring then
      local ok, s = pcall(tostring, err)
      if ok then return s end
    end
    if err.message ~= nil then
      return (err.type and (tostring(err.type) .. ": ") or "") .. tostring(err.message)
    end
    local ok, j = pcall(cjson.encode, err)
    if ok then return j end
  end
  return tostring(err)
end

-- An error as one text, redacted as the case's spans store it (it goes to
-- eval_results.error, stdout and the JUnit report).
local function describe_error(err)
  local text = error_text(err)
  return moonspan.redact and (moonspan.redact(text)) or text
end
M.describe_error = describe_error

-- --- formatting ---------------------------------------------------------------

local fmt_pct = compare.fmt_pct
M.fmt_pct = fmt_pct

-- The report's units (ms_fmt_ms): a case of a mock pipeline takes
-- microseconds, which "%.2f ms" would print as 0.00 ms.
local function fmt_ms(x)
  if x == nil then return "-" end
  return moonspan.fmt_ms(x)
end
M.fmt_ms = fmt_ms

local fmt_usd = function(x)
  if x == nil then return "unknown" end
  return scorers.fmt_usd(x)
end
M.fmt_usd = fmt_usd

local function signed(x, fmt)
  if x == nil then return "" end
  return (x >= 0 and "+" or "-") .. fmt(math.abs(x))
end

local function one_line(s, max)
  s = tostring(s or ""):gsub("[\r\n\t]+", " ")
  if max and #s > max then
    local cut = max - 3
    -- not inside a UTF-8 character: back up over continuation bytes
    while cut > 0 and (s:byte(cut + 1) or 0) & 0xC0 == 0x80 do cut = cut - 1 end
    s = s:sub(1, cut) .. "..."
  end
  return s
end
M.one_line = one_line

-- Text from suites, datasets, models and servers as a terminal may show
-- it: control characters made visible, so a case id or an error message
-- cannot retitle, clear or garble the terminal. With `max`, one line.
local function shown(s, max)
  if max then return moonspan.escape(one_line(s, max)) end
  return moonspan.escape(tostring(s))
end
M.shown = shown

-- Columns a shown string takes (characters, not bytes).
local function width(s)
  return utf8.len(s) or #s
end

local function case_label(r, repeat_count)
  if (repeat_count or 1) > 1 then return r.case_id .. "#" .. r.repeat_index end
  return r.case_id
end
M.case_label = case_label

-- The status line of one suite, e.g.
-- "capital-cities: FAILED, pass rate 80.0% (8/10) under the threshold 90.0%"
function M.status_line(name, s)
  local gate = s.threshold
  local gate_txt = "threshold " .. fmt_pct(s.threshold)
  if s.fail_under and s.fail_under > gate then
    gate, gate_txt = s.fail_under, "--fail-under " .. fmt_pct(s.fail_under)
  end
  local rel = (s.pass_rate ~= nil and s.pass_rate >= gate - 1e-9) and ">=" or "<"
  local gates_txt = (s.gates_failed or 0) > 0
                    and string.format("; %d gate%s failed", s.gates_failed, s.gates_failed == 1 and "" or "s") or ""
  return string.format("%s: %s, pass rate %s (%d/%d) %s %s%s", shown(name), s.status == "passed" and "passed" or "FAILED",
                       fmt_pct(s.pass_rate), s.passed, s.cases, rel, gate_txt, gates_txt)
end

-- Lines describing a baseline diff (no trailing newline), indented: the
-- paired statistics (eval_compare.lua), the descriptive figures, which
-- cases changed outcome (said to be within noise when the McNemar test
-- finds no evidence), and the pairs that got worse with the first span
-- that changed against their baseline trace (d.first_changes, when the
-- runner found them).
function M.diff_lines(d, baseline_id, indent)
  indent = indent or "  "
  local lines = compare.lines(d.stats, baseline_id, indent, {shown = shown})
  local b, a = d.before, d.after
  lines[#lines + 1] = string.format("%s  p50 %s -> %s, p95 %s -> %s, cost per case %s -> %s", indent,
                                    fmt_ms(b.p50_ms), fmt_ms(a.p50_ms), fmt_ms(b.p95_ms), fmt_ms(a.p95_ms),
                                    fmt_usd(d.cost_before), fmt_usd(d.cost_after))
  local noise = d.stats.pass.verdict == compare.NONE and " (within noise: no evidence of change)" or ""
  if #d.newly_failing > 0 then
    lines[#lines + 1] = indent .. "  newly failing" .. noise .. ": " .. shown(dataset.list_ids(d.newly_failing, 20))
  end
  if #d.newly_passing > 0 then
    lines[#lines + 1] = indent .. "  newly passing" .. noise .. ": " .. shown(dataset.list_ids(d.newly_passing, 20))
  end
  if #d.added > 0 then lines[#lines + 1] = indent .. "  new cases: " .. shown(dataset.list_ids(d.added, 20)) end
  if #d.removed > 0 then
    lines[#lines + 1] = indent .. "  not run this time: " .. shown(dataset.list_ids(d.removed, 20))
  end
  if #d.newly_failing == 0 and #d.newly_passing == 0 then
    lines[#lines + 1] = indent .. "  no case changed outcome"
  end
  -- A case whose trace names a changed span gets a line of its own; the
  -- rest share one line per reason, so noise does not read as findings.
  local quiet, reasons = {}, {}
  for _, w in ipairs(d.first_changes or {}) do
    if w.text:match("^first change: ") then
      lines[#lines + 1] = string.format("%s  worse: %s (%s): %s", indent, shown(w.label, 60), shown(w.why, 60),
                                        shown(w.text, 160))
    else
      if not quiet[w.text] then quiet[w.text], reasons[#reasons + 1] = {}, w.text end
      table.insert(quiet[w.text], w.label)
    end
  end
  for _, why in ipairs(reasons) do
    lines[#lines + 1] = string.format("%s  worse, %s: %s", indent, shown(why, 160),
                                      shown(table.concat(quiet[why], ", "), 400))
  end
  return lines
end

-- The failed-cases table: one row per failed execution.
function M.failed_table(reports)
  local rows = {}
  for _, rep in ipairs(reports) do
    for _, r in ipairs(rep.results) do
      if not r.pass then
        rows[#rows + 1] = {shown(rep.suite.name), shown(case_label(r, rep.repeat_count)),
                           shown(r.reason or r.error, 72), shown(r.trace_id or "-")}
      end
    end
  end
  if #rows == 0 then return "" end
  local head = {"suite", "case", "reason", "trace (moonspan show ID)"}
  local w = {}
  for i, h in ipairs(head) do w[i] = #h end
  for _, row in ipairs(rows) do
    for i, v in ipairs(row) do w[i] = math.max(w[i], width(v)) end
  end
  local function fmt_row(row)
    local cells = {}
    for i, v in ipairs(row) do
      cells[i] = i < #row and (v .. string.rep(" ", w[i] - width(v))) or v
    end
    return "  " .. table.concat(cells, "  ")
  end
  local out = {string.format("Failed cases (%d)", #rows), fmt_row(head)}
  for _, row in ipairs(rows) do out[#out + 1] = fmt_row(row) end
  -- the table cuts reasons short; an error's whole message says how to fix it
  local errors = {}
  for _, rep in ipairs(reports) do
    for _, r in ipairs(rep.results) do
      if not r.pass and r.error and #errors < 20 then
        errors[#errors + 1] = string.format("  %s %s: %s", shown(rep.suite.name),
                                            shown(case_label(r, rep.repeat_count)), shown(r.error, 2000))
      end
    end
  end
  if #errors > 0 then
    out[#out + 1] = ""
    out[#out + 1] = "Errors"
    for _, e in ipairs(errors) do out[#out + 1] = e end
  end
  return table.concat(out, "\n") .. "\n"
end

-- What a --replay run did with its LLM calls, e.g. "replay of eval run 3:
-- 9 LLM calls replayed, 1 missed and went live (--replay-miss live)".
function M.replay_line(r)
  local c = r.counts
  local function calls(n) return string.format("%d LLM call%s", n, n == 1 and "" or "s") end
  local line = string.format("replay of eval run %s: %s replayed", tostring(r.of), calls(c.replayed))
  if c.missed == 0 then return line .. ", none missed" end
  local fate
  if r.miss == "fail" then
    fate = "failed"
  elseif r.miss == "record" then
    fate = string.format("went live and %s recorded in eval run %s", c.live == 1 and "was" or "were",
                         tostring(r.recorded_in))
  else
    fate = "went live"
  end
  return string.format("%s, %d missed and %s (--replay-miss %s)", line, c.missed, fate, r.miss)
end

-- The summary block of one suite report.
function M.summary_text(rep)
  local s = rep.summary
  local out = {M.status_line(rep.suite.name, s) .. string.format("  (eval run %s)", tostring(rep.run_id))}
  local cost = fmt_usd(s.cost_usd)
  if s.unknown_cost > 0 and s.cost_usd ~= nil then
    cost = cost .. string.format(" + %d case%s of unknown cost", s.unknown_cost, s.unknown_cost == 1 and "" or "s")
  end
  local rep_cost = s.replayed_cost_usd > 0 and string.format(", replayed %s (not spent)", fmt_usd(s.replayed_cost_usd))
                   or ""
  out[#out + 1] = string.format("  latency p50 %s, p95 %s; cost %s%s%s", fmt_ms(s.p50_ms), fmt_ms(s.p95_ms), cost,
                                rep_cost, (s.input_tokens + s.output_tokens > 0)
                                  and string.format("; tokens %d in, %d out", s.input_tokens, s.output_tokens) or "")
  if rep.replay then out[#out + 1] = "  " .. M.replay_line(rep.replay) end
  if s.errors > 0 then
    out[#out + 1] = string.format("  %d of the failures raised an error", s.errors)
  end
  for _, l in ipairs(gates.lines(s.gates, "  ")) do out[#out + 1] = shown(l) end
  if (rep.repeat_count or 1) > 1 then
    local k = rep.repeat_count
    local parts = {}
    for _, c in ipairs(s.per_case) do
      if c.passes < c.runs then
        parts[#parts + 1] = string.format("%s %d/%d%s", shown(c.id), c.passes, c.runs, c.flaky and " flaky" or "")
      end
    end
    out[#out + 1] = string.format("  repeat %d: %d flaky, %d always failing, %d stable passing", k, #s.flaky,
                                  #s.always_failing, #s.per_case - #s.flaky - #s.always_failing)
    if #parts > 0 then out[#out + 1] = "    passes/runs: " .. table.concat(parts, ", ") end
  end
  local means = {}
  for _, m in ipairs(compare.scorer_means(rep.results)) do
    means[#means + 1] = string.format("%s %s", shown(m.name, 60), m.mean and string.format("%.3f", m.mean) or "-")
  end
  if #means > 0 then out[#out + 1] = "  scorer means: " .. table.concat(means, ", ") end
  if rep.diff then
    if rep.baseline_text then out[#out + 1] = "  baseline: " .. shown(rep.baseline_text) end
    for _, l in ipairs(M.diff_lines(rep.diff, rep.baseline_id, "  ")) do out[#out + 1] = l end
  elseif rep.baseline_note then
    out[#out + 1] = "  baseline: " .. shown(rep.baseline_note)
  end
  if rep.gate_text then out[#out + 1] = "  " .. rep.gate_text end
  return table.concat(out, "\n") .. "\n"
end

-- Everything main prints to stdout at the end.
function M.render(reports)
  local parts = {}
  local failed = M.failed_table(reports)
  if failed ~= "" then parts[#parts + 1] = failed end
  for _, rep in ipairs(reports) do parts[#parts + 1] = M.summary_text(rep) end
  return table.concat(parts, "\n")
end

-- --- alerts -------------------------------------------------------------------

-- Whether a suite report deserves an alert: it failed its gate or
-- regressed against the baseline.
function M.needs_alert(rep)
  return rep.summary.status == "failed" or (rep.diff ~= nil and rep.diff.regressed)
end

-- The Slack-compatible text of the alert for these reports, or nil when
-- none needs one.
function M.alert_text(reports, opts)
  opts = opts or {}
  local blocks = {}
  for _, rep in ipairs(reports) do
    if M.needs_alert(rep) then
      local s = rep.summary
      local why = {}
      if s.status == "failed" then why[#why + 1] = "failed its gate" end
      if rep.diff and rep.diff.regressed then why[#why + 1] = "regressed against eval run " .. tostring(rep.baseline_id) end
      local b = {string.format("*%s* %s (eval run %s%s)", rep.suite.name, table.concat(why, " and "),
                               tostring(rep.run_id), opts.git_commit and (", commit " .. opts.git_commit:sub(1, 12)) or "")}
      b[#b + 1] = M.status_line(rep.suite.name, s)
      b[#b + 1] = string.format("latency p50 %s, p95 %s; cost %s", fmt_ms(s.p50_ms), fmt_ms(s.p95_ms),
                                fmt_usd(s.cost_usd))
      if rep.diff then
        for _, l in ipairs(M.diff_lines(rep.diff, rep.baseline_id, "")) do b[#b + 1] = l end
      end
      local shown = 0
      for _, r in ipairs(rep.results) do
        if not r.pass then
          shown = shown + 1
          if shown > 10 then
            b[#b + 1] = string.format("... and %d more failed", s.failed - 10)
            break
          end
          b[#b + 1] = string.format("- %s: %s (moonspan show %s)", case_label(r, rep.repeat_count),
                                    one_line(r.reason or r.error, 120), r.trace_id or "-")
        end
      end
      blocks[#blocks + 1] = table.concat(b, "\n")
    end
  end
  if #blocks == 0 then return nil end
  return string.format(":rotating_light: moonspan eval: %d suite%s need%s attention\n", #blocks,
                       #blocks == 1 and "" or "s", #blocks == 1 and "s" or "") .. table.concat(blocks, "\n\n")
end

function M.alert_body(text)
  return cjson.encode{text = text}
end

-- POSTs the alert with up to `attempts` tries (default 3), waiting as
-- llm.call does (exponential backoff with full jitter from `backoff_ms`,
-- default 500); the statuses llm.call retries (408, 409, 429, 5xx) and
-- transport errors are retried, other statuses are not. opts.headers
-- adds request headers.
-- Returns true, or nil and what went wrong. Never raises.
function M.post_alert(url, text, opts)
  opts = opts or {}
  local attempts, backoff = opts.attempts or 3, opts.backoff_ms or 500
  local body = M.alert_body(text)
  local headers = {["Content-Type"] = "application/json"}
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  local last
  for attempt = 1, attempts do
    local ok, res = pcall(sched.http, {url = url, method = "POST", body = body, timeout_ms = opts.timeout_ms or 10000,
                                       connect_timeout_ms = 5000, headers = headers})
    if ok and res.status >= 200 and res.status < 300 then return true end
    if ok then
      last = string.format("HTTP %d %s", res.status, one_line(res.body, 120))
      if not wire.retryable_status(res.status) then
        return nil, last .. " (not retried)"
      end
    else
      last = describe_error(res)
    end
    if attempt < attempts then pcall(sched.sleep, wire.backoff_ms(backoff, 8 * backoff, attempt)) end
  end
  return nil, string.format("%s (after %d attempts)", last, attempts)
end

-- --- JUnit ----------------------------------------------------------------------

function M.junit_suites(reports)
  local suites = {}
  for _, rep in ipairs(reports) do
    local cases = {}
    for _, r in ipairs(rep.results) do
      local c = {name = case_label(r, rep.repeat_count), classname = rep.suite.name,
                 time_s = (r.latency_ms or 0) / 1000}
      if not r.pass then
        local detail = {}
        for _, sc in ipairs(r.scores or {}) do
          detail[#detail + 1] = string.format("%s: %s %.3g - %s", sc.name, sc.pass and "pass" or "FAIL",
                                              sc.score or 0, sc.reason or "")
        end
        if r.error then detail[#detail + 1] = "error: " .. r.error end
        detail[#detail + 1] = "trace: " .. tostring(r.trace_id) .. " (moonspan show " .. tostring(r.trace_id) .. ")"
        c.failure = {message = r.reason or r.error or "failed", type = r.error and "error" or "score",
                     text = table.concat(detail, "\n")}
      end
      cases[#cases + 1] = c
    end
    -- a gate is a test of the suite as a whole: CI shows why a suite whose cases pass failed
    for _, g in ipairs(rep.summary.gates or {}) do
      local c = {name = "gate " .. g.name, classname = rep.suite.name, time_s = 0}
      if not g.pass then c.failure = {message = g.reason, type = "gate", text = g.name .. ": " .. g.reason} end
      cases[#cases + 1] = c
    end
    suites[#suites + 1] = {name = rep.suite.name, time_s = (rep.wall_ms or 0) / 1000, cases = cases,
                           timestamp = rep.started_at,
                           properties = {{"eval_run", tostring(rep.run_id)}, {"pass_rate", fmt_pct(rep.summary.pass_rate)},
                                         {"threshold", tostring(rep.summary.threshold)}, {"status", rep.summary.status}}}
    -- the baseline's verdicts, for CI dashboards that read properties
    local props = suites[#suites].properties
    if rep.diff then
      local st = rep.diff.stats
      props[#props + 1] = {"baseline_run", tostring(rep.baseline_id)}
      props[#props + 1] = {"pass_rate_verdict", st.pass.verdict}
      props[#props + 1] = {"pass_rate_mcnemar_p", string.format("%.4g", st.pass.p)}
      for _, sc in ipairs(st.scorers) do props[#props + 1] = {"score_verdict:" .. sc.name, sc.verdict} end
      props[#props + 1] = {"latency_verdict", st.latency.verdict}
      props[#props + 1] = {"cost_verdict", st.cost.verdict}
      props[#props + 1] = {"regressed", tostring(rep.diff.regressed)}
    end
  end
  return suites
end


return M
