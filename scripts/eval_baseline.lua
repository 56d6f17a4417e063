-- Which earlier eval run a run is compared with (moonspan eval --baseline),
-- and why. A baseline is only worth comparing with when it ran the same
-- cases: same suite, same --filter, same dataset, the same case ids (read
-- from its stored config and results), preferably with the same --repeat.
-- `--baseline last` takes the newest such run and names the newer ones it
-- skipped; an explicit `--baseline ID` is used as asked, with a warning
-- when it is not comparable.
--
-- A selection (what this run covers) is
--   {filter = glob|nil, dataset = name|"inline", repeat_count = k, case_ids = {sorted ids}}
-- and a run is what moonspan.eval_store.run / list_runs return (config decoded).

local M = {}

-- How many earlier runs `last` looks through, newest first.
M.MAX_CANDIDATES = 200

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function plural(n, word)
  return string.format("%d %s%s", n, word, n == 1 and "" or "s")
end

local function some(ids, max)
  local shown = {}
  for i = 1, math.min(#ids, max) do shown[i] = ids[i] end
  return table.concat(shown, ", ") .. (#ids > max and ", ..." or "")
end

-- What this run covers: the suite's planned cases under the options.
function M.selection(cases, dataset, o)
  local ids = {}
  for i, c in ipairs(cases) do ids[i] = c.id end
  table.sort(ids)
  return {filter = o.filter, dataset = dataset, repeat_count = o.repeat_count or 1, case_ids = ids}
end

local function filter_text(f)
  return f and string.format("--filter '%s'", f) or "no --filter"
end

-- Why run `run` (with case ids `ids`) did not run the selection's cases,
-- or nil when it did. `ids` is only needed when filter and dataset match
-- (a function returning them, so callers read them only then).
function M.mismatch(run, ids, sel)
  local cfg = type(run.config) == "table" and run.config or {}
  if cfg.filter ~= sel.filter then
    local why = filter_text(cfg.filter)
    if sel.filter then why = why .. " (this run: " .. filter_text(sel.filter) .. ")" end
    return why
  end
  -- runs stored before the dataset was kept say nothing: their case ids decide
  if cfg.dataset ~= nil and sel.dataset ~= nil and cfg.dataset ~= sel.dataset then
    return string.format("dataset %s (this run: %s)", tostring(cfg.dataset), tostring(sel.dataset))
  end
  local theirs = type(ids) == "function" and ids() or ids
  local have, want = set_of(theirs), set_of(sel.case_ids)
  local missing, extra = {}, {}
  for _, id in ipairs(sel.case_ids) do
    if not have[id] then missing[#missing + 1] = id end
  end
  for _, id in ipairs(theirs) do
    if not want[id] then extra[#extra + 1] = id end
  end
  local parts = {}
  if #missing > 0 then
    parts[#parts + 1] = string.format("lacks %d of this run's %s (%s)", #missing,
                                      plural(#sel.case_ids, "case"), some(missing, 3))
  end
  if #extra > 0 then
    parts[#parts + 1] = string.format("has %s this run does not (%s)", plural(#extra, "case"), some(extra, 3))
  end
  if #parts > 0 then return table.concat(parts, " and ") end
  return nil
end

local function repeat_of(run)
  local cfg = type(run.config) == "table" and run.config or {}
  return math.tointeger(cfg.repeat_count) or 1
end

local function repeat_text(run, sel)
  return string.format("--repeat %d (this run: --repeat %d)", repeat_of(run), sel.repeat_count)
end

-- "eval run 12 of 2026-11-27 14:02 UTC (45 results, commit abc1234)"
function M.describe_run(run)
  local when = run.start_ns and os.date("!%Y-%m-%d %H:%M UTC", run.start_ns // 1000000000) or "an unknown time"
  local commit = type(run.git_commit) == "string" and (", commit " .. run.git_commit:sub(1, 7)) or ""
  return string.format("eval run %s of %s (%s%s)", tostring(run.id), when, plural(run.cases or 0, "result"), commit)
end

local function skipped_text(skipped, max)
  max = max or 5
  local parts = {}
  for i = 1, math.min(#skipped, max) do
    parts[i] = string.format("skipped run %s: %s", tostring(skipped[i].id), skipped[i].why)
  end
  if #skipped > max then parts[#parts + 1] = string.format("and %d more skipped", #skipped - max) end
  return table.concat(parts, "; ")
end

-- --baseline last. candidates: earlier runs newest first; case_ids(id):
-- the case ids of a run. Returns {id =, run =, skipped = {{id =, why =}},
-- repeat_differs =} or nil and a note saying why there is none.
function M.choose_last(candidates, case_ids, sel)
  if #candidates == 0 then return nil, "no earlier run to compare with (this is the suite's first finished run)" end
  local skipped, fallback = {}, nil
  for _, run in ipairs(candidates) do
    local why = M.mismatch(run, function() return case_ids(run.id) end, sel)
    if why then
      skipped[#skipped + 1] = {id = run.id, why = why}
    elseif repeat_of(run) == sel.repeat_count then
      return {id = run.id, run = run, skipped = skipped}
    else
      -- comparable but for --repeat: taken only if no older run matches in
      -- full, and then with the runs newer than it as its skipped ones
      if not fallback then
        fallback = {id = run.id, run = run, skipped = table.move(skipped, 1, #skipped, 1, {}), repeat_differs = true}
      end
      skipped[#skipped + 1] = {id = run.id, why = repeat_text(run, sel)}
    end
  end
  if fallback then return fallback end
  return nil, "no comparable earlier run to compare with: " .. skipped_text(skipped)
              .. "; run the suite once with the same cases to start a baseline, or name a run with --baseline ID"
end

-- The line saying which run was chosen and why others were not, e.g.
-- "eval run 12 of 2026-11-27 14:02 UTC (45 results, commit abc1234);
-- skipped run 13: --filter 'case1'".
function M.choice_text(choice, sel)
  local s = M.describe_run(choice.run)
  if choice.repeat_differs then
    s = s .. ", the newest comparable run, with " .. repeat_text(choice.run, sel) .. "; compared per case run"
  end
  if #choice.skipped > 0 then s = s .. "; " .. skipped_text(choice.skipped) end
  return s
end

-- Looks through the store for --baseline last. Returns the choice and its
-- text, or nil and a note.
function M.last(store, suite, sel)
  local candidates = store.list_runs(suite, M.MAX_CANDIDATES)
  local choice, note = M.choose_last(candidates, store.case_ids, sel)
  if not choice then return nil, note end
  return choice, M.choice_text(choice, sel)
end

-- An explicit --baseline ID (already found to be of the suite). Returns
-- the text describing it and, when it did not run this run's cases, a
-- warning saying how it differs.
function M.explicit(store, id, sel)
  local run = store.run(id)
  if not run then return "eval run " .. tostring(id), nil end
  local why = M.mismatch(run, function() return store.case_ids(id) end, sel)
  if not why and repeat_of(run) ~= sel.repeat_count then why = repeat_text(run, sel) end
  local text = M.describe_run(run)
  if why then
    local warning = string.format("eval run %s is not comparable with this run: %s; used as asked, compared over "
                                  .. "the cases both ran", tostring(id), why)
    return text .. ", not comparable: " .. why, warning
  end
  return text, nil
end

return M
