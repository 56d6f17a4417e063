-- Choosing span granularity without editing code: levels, folds,
-- sampling, and what each run's telemetry did. Through the real binary on
-- a real store.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")

-- name -> {kind, parent name, fold columns} of the spans of trace `trace`
local function tree(db, trace)
  local rows = H.query(db, [[
    SELECT s.name, s.kind, p.name AS parent, s.fold_count, s.fold_errors, s.fold_total_ns,
           s.fold_min_ns, s.fold_max_ns, s.duration_ns, s.status
    FROM traces t JOIN spans s ON s.trace_row = t.id
    LEFT JOIN spans p ON p.trace_row = t.id AND p.span_id = s.parent_id
    WHERE t.name = ']] .. trace .. "'")
  local by = {}
  for _, r in ipairs(rows) do by[r.name] = r end
  return by, #rows
end

describe("levels", function()
  local PIPELINE = [[
    local DEBUG, TRACE = {level = "debug"}, {level = "trace"}
    trace("req", function()
      span("coarse", function()
        span("fine", DEBUG, function(s)
          s:set("k", 1)                               -- a no-op below the level
          span("inner", function() end)               -- nests under the nearest recorded span
          span("finest", TRACE, function() end)
        end)
      end)
    end)
  ]]

  it("records info only by default: a debug span's body runs, its children nest under the recorded parent", function()
    local r = H.run_ok(PIPELINE)
    local by, n = tree(r.db, "req")
    assert.are.equal(3, n) -- req, coarse, inner
    assert.are.equal("coarse", by.inner.parent)
    assert.is_nil(by.fine)
    assert.are.equal(1, H.scalar(r.db, "SELECT spans_skipped FROM runs") >= 1 and 1 or 0)
  end)

  it("records more with --level, and with $MOONSPAN_LEVEL", function()
    local r = H.run_ok(PIPELINE, {run_args = {"--level", "debug"}})
    local by, n = tree(r.db, "req")
    assert.are.equal(4, n)
    assert.are.equal("fine", by.inner.parent)
    assert.is_nil(by.finest)
    r = H.run_ok(PIPELINE, {env = {MOONSPAN_LEVEL = "trace"}})
    by, n = tree(r.db, "req")
    assert.are.equal(5, n)
    assert.are.equal("fine", by.finest.parent)
    assert.are.equal("trace", H.scalar(r.db, "SELECT level FROM runs"))
    -- the flag wins over the environment
    r = H.run_ok(PIPELINE, {env = {MOONSPAN_LEVEL = "trace"}, run_args = {"--level", "info"}})
    assert.are.equal(3, select(2, tree(r.db, "req")))
  end)

  it("changes from the script with moonspan.set_level, and span_at follows it", function()
    local r = H.run_ok([[
      local dspan = moonspan.span_at("debug")
      trace("req", function()
        dspan("before", function(s) s:set("x", 1) end)
        assert(moonspan.set_level("debug") == "info")
        dspan("after", function(s, a, b) s:set("sum", a + b) end, 2, 3)
        span("plain", {level = "debug"}, function() end)
        assert(moonspan.set_level("info") == "debug")
        dspan("again", function() end)
      end)
      print(select("#", dspan("r", function() return 1, nil, 3 end)))
    ]])
    local by = tree(r.db, "req")
    assert.is_nil(by.before)
    assert.is_truthy(by.after)
    assert.is_truthy(by.plain)
    assert.is_nil(by.again)
    assert.are.equal(5, H.scalar(r.db, [[SELECT json_extract(s.attrs, '$.sum') FROM spans s
                                          WHERE s.name = 'after']]))
    assert.are.equal("3\n", r.out) -- every result of an unrecorded body, nil included
  end)

  it("lets errors through an unrecorded span unchanged", function()
    local r = H.run_ok([[
      local e = setmetatable({}, {__tostring = function() return "mine" end})
      trace("req", function()
        local ok, got = pcall(span, "fine", {level = "debug"}, function() error(e) end)
        assert(not ok and rawequal(got, e))
        local dspan = moonspan.span_at("trace")
        ok, got = pcall(dspan, "x", function() error("plain", 0) end)
        assert(not ok and got == "plain")
      end)
    ]])
    assert.are.equal(0, r.code)
  end)

  it("refuses bad levels, naming the choices", function()
    local r = H.run_script("span('x', {level = 'verbose'}, function() end)")
    assert.are.equal(1, r.code)
    assert.is_truthy(r.err:find('level must be "info", "debug" or "trace", got verbose', 1, true), r.err)
    r = H.run_script("print(1)", {run_args = {"--level", "loud"}})
    assert.are.equal(2, r.code)
    assert.is_truthy(r.err:find("--level 'loud' is not a level; give info, debug or trace", 1, true), r.err)
    r = H.run_script("print(1)", {env = {MOONSPAN_LEVEL = "x"}})
    assert.are.equal(2, r.code)
    assert.is_truthy(r.err:find("MOONSPAN_LEVEL='x' is not a level", 1, true), r.err)
    r = H.run_script("moonspan.set_level('all')")
    assert.are.equal(1, r.code)
    assert.is_truthy(r.err:find("moonspan.set_level: level must be", 1, true), r.err)
  end)
end)

describe("folds", function()
  it("record repeated spans as one record: count, total, extremes, errors, children under it", function()
    local r = H.run_ok([[
      local FOLD = {fold = true}
      trace("rerank", function()
        span("loop", function()
          for i = 1, 1000 do
            pcall(span, "score_doc", FOLD, function()
              span("tokenize", FOLD, function() end)
              if i % 100 == 0 then error("bad doc " .. i) end
            end)
          end
        end)
      end)
    ]])
    local by, n = tree(r.db, "rerank")
    assert.are.equal(4, n) -- rerank, loop, score_doc, tokenize: no row per repetition
    local f = by.score_doc
    assert.are.equal("fold", f.kind)
    assert.are.equal("loop", f.parent)
    assert.are.equal(1000, f.fold_count)
    assert.are.equal(10, f.fold_errors)
    assert.are.equal("error", f.status)
    assert.is_true(f.fold_min_ns <= f.fold_max_ns and f.fold_max_ns <= f.fold_total_ns)
    assert.is_true(f.fold_total_ns <= f.duration_ns) -- from the first start to the last end
    assert.are.equal("score_doc", by.tokenize.parent)
    assert.are.equal(1000, by.tokenize.fold_count)
    assert.are.equal(10, H.scalar(r.db, "SELECT error_count FROM traces WHERE name = 'rerank'"))
    assert.are.equal(2000, H.scalar(r.db, "SELECT fold_repetitions FROM runs"))
  end)

  it("folds by rule with --fold N: the first N spans of a name under one parent stay spans", function()
    local src = [[
      trace("req", function()
        for i = 1, 50 do span("step", function() end) end
        span("other", function() end)
        for i = 1, 3 do span("step", function() end) end
      end)
    ]]
    local r = H.run_ok(src, {run_args = {"--fold", "10"}})
    local rows = H.query(r.db, "SELECT s.name, s.kind, s.fold_count FROM spans s JOIN traces t ON s.trace_row = t.id"
                               .. " WHERE t.name = 'req' AND s.name = 'step' ORDER BY s.kind, s.span_index")
    local spans, folded = 0, 0
    for _, row in ipairs(rows) do
      if row.kind == "fold" then folded = folded + row.fold_count else spans = spans + 1 end
    end
    assert.are.equal(10, spans)  -- the first 10; "other" between them changes nothing
    assert.are.equal(43, folded)
    r = H.run_script("print(1)", {run_args = {"--fold", "0"}})
    assert.are.equal(2, r.code)
    assert.is_truthy(r.err:find("--fold '0' is not a whole number from 1", 1, true), r.err)
  end)

  it("times a hot loop with moonspan.fold, one native call a repetition", function()
    local r = H.run_ok([[
      local rep, clock = moonspan.fold("score"), moonspan.clock
      trace("req", function()
        span("loop", function()
          local t = clock()
          for i = 1, 500 do
            local x = 0
            for j = 1, 100 do x = x + j end
            t = rep(t)
          end
        end)
      end)
      local ok, err = pcall(rep, clock())
      print(ok, err)
    ]])
    local by = tree(r.db, "req")
    assert.are.equal("fold", by.score.kind)
    assert.are.equal("loop", by.score.parent)
    assert.are.equal(500, by.score.fold_count)
    -- outside any trace there is the run trace: a fold there is fine too
    assert.is_truthy(r.out:find("^true"), r.out)
  end)

  it("refuses a fold on a trace and a fold option that is not a boolean", function()
    local r = H.run_script("trace('t', {fold = true}, function() end)")
    assert.are.equal(1, r.code)
    assert.is_truthy(r.err:find("cannot fold: a trace is one whole request", 1, true), r.err)
    r = H.run_script("span('s', {fold = 'yes'}, function() end)")
    assert.are.equal(1, r.code)
    assert.is_truthy(r.err:find("fold must be true or false, got string", 1, true), r.err)
  end)
end)

describe("sampling", function()
  local REQUESTS = [[
    for i = 1, 400 do
      trace("req", function(ctx)
        span("step", function() end)
        if i % 40 == 0 then ctx:add_error("bad " .. i) end
        if i == 7 then moonspan.sleep_ms(30) end
      end)
    end
  ]]

  it("keeps the spans of a share of traces, every failed one, and a summary of the rest", function()
    local r = H.run_ok(REQUESTS, {run_args = {"--sample", "0.1"}})
    local rows = H.query(r.db, "SELECT sampled_out, status, count(*) AS n, count(spans) AS with_spans,"
                               .. " sum(span_count) AS spans FROM traces WHERE name = 'req' GROUP BY 1, 2")
    local got = {}
    for _, row in ipairs(rows) do got[string.format("%d%s", row.sampled_out, row.status)] = row end
    assert.are.equal(10, got["0error"].n)          -- every failed one kept
    assert.is_nil(got["1error"])
    local kept_ok = got["0ok"] and got["0ok"].n or 0
    assert.is_true(kept_ok > 10 and kept_ok < 80, "kept " .. kept_ok .. " of 390")
    assert.are.equal(390 - kept_ok, got["1ok"].n)   -- the rest: their summary only
    assert.are.equal(0, got["1ok"].with_spans)
    assert.are.equal(2 * got["1ok"].n, got["1ok"].spans) -- the summary still counts their spans
    assert.are.equal(got["1ok"].n, H.scalar(r.db, "SELECT traces_sampled_out FROM runs"))
    -- no span of a sampled-out trace reaches the spans table
    assert.are.equal(0, H.scalar(r.db, "SELECT count(*) FROM spans s JOIN traces t ON s.trace_row = t.id"
                                       .. " WHERE t.sampled_out = 1"))
  end)

  it("decides by trace id, so processes joining one trace decide alike", function()
    local tps, decisions = {}, {}
    math.randomseed(42)
    for i = 1, 40 do
      local hex = {}
      for k = 1, 32 do hex[k] = string.format("%x", math.random(0, 15)) end
      tps[i] = "00-" .. table.concat(hex) .. "-00f067aa0ba902b7-01"
    end
    for round = 1, 2 do
      local got = {}
      for i = 1, 40 do
        local r = H.run_ok([[trace("req", function() span("s", function() end) end)]],
                           {run_args = {"--sample", "0.5"}, env = {TRACEPARENT = tps[i]}})
        got[i] = string.format("%d", H.scalar(r.db, "SELECT sampled_out FROM traces WHERE name = 'req'"))
      end
      decisions[round] = table.concat(got, ",")
    end
    assert.are.equal(decisions[1], decisions[2])
    assert.is_truthy(decisions[1]:find("0") and decisions[1]:find("1"), decisions[1])
  end)

  it("keeps slow traces with --keep slower=", function()
    local r = H.run_ok(REQUESTS, {run_args = {"--sample", "0.001", "--keep", "errors,slower=20ms"}})
    local slow = H.query(r.db, "SELECT sampled_out FROM traces WHERE name = 'req' AND duration_ns >= 20000000")
    assert.are.equal(1, #slow)
    assert.are.equal(0, slow[1].sampled_out)
  end)

  it("refuses bad sampling options, naming the fix", function()
    local cases = {
      {{"--sample", "0"}, "--sample '0' is not a share of traces above 0 and up to 1"},
      {{"--sample", "1.5"}, "--sample '1.5' is not a share"},
      {{"--keep", "errors"}, "--keep adds to what --sample keeps"},
      {{"--sample", "0.5", "--keep", "fast"}, "--keep rule 'fast' is unknown"},
      {{"--sample", "0.5", "--keep", "slowest=5"}, "--keep slowest='5' is not a percentage"},
      {{"--sample", "0.5", "--keep", "slower=abc"}, "--keep slower='abc' is not a duration"},
      {{"--sample", "0.5", "--keep", "errors,,slower=1s"}, "has an empty rule"},
    }
    for _, c in ipairs(cases) do
      local r = H.run_script("print(1)", {run_args = c[1]})
      assert.are.equal(2, r.code, table.concat(c[1], " "))
      assert.is_truthy(r.err:find(c[2], 1, true), r.err)
    end
  end)
end)

describe("a run's telemetry", function()
  it("is recorded on its runs row: kept, folded, skipped, sampled out, and what they cost", function()
    local r = H.run_ok([[
      local DEBUG, FOLD = {level = "debug"}, {fold = true}
      for i = 1, 20 do
        trace("req", function()
          for j = 1, 10 do span("s", function() end) end
          for j = 1, 30 do span("f", FOLD, function() end) end
          for j = 1, 5 do span("d", DEBUG, function() end) end
        end)
      end
    ]], {run_args = {"--sample", "0.5", "--fold", "1000"}})
    local run = H.query(r.db, "SELECT * FROM runs")[1]
    assert.are.equal("info", run.level)
    assert.are.equal(1000, run.fold_above)
    assert.are.equal(0.5, run.sample_rate)
    assert.are.equal(600, run.fold_repetitions)
    assert.are.equal(100, run.spans_skipped)
    local stored = H.scalar(r.db, "SELECT count(*) FROM spans")
    assert.are.equal(stored, run.spans_kept)
    assert.are.equal(12 * run.traces_sampled_out, run.spans_sampled_out) -- root, 10 spans, 1 fold
    assert.is_true(run.ns_per_span > 0 and run.ns_per_fold > 0 and run.ns_per_skip >= 0)
    assert.is_true(run.telemetry_ns > 0 and run.end_ns > run.start_ns)
    assert.is_true(run.telemetry_ns < run.end_ns - run.start_ns)
  end)
end)

describe("report --overhead", function()
  it("shows what recording cost each run, newest first, as text and JSON", function()
    local dir = H.tmpdir("overhead")
    local db = dir .. "/x.db"
    H.run_ok([[trace("r", function() for i = 1, 100 do span("s", function() end) end end)]], {db = db, dir = dir})
    H.run_ok([[trace("r", function() for i = 1, 100 do span("s", {fold = true}, function() end) end end)]],
             {db = db, dir = dir, run_args = {"--level", "debug", "--sample", "0.5"}})
    local r = H.moonspan({"report", "--overhead"}, {db = db})
    assert.are.equal(0, r.code, r.err)
    local second = r.out:find("level debug, --sample 0.5", 1, true)
    local first = r.out:find("spans kept 101,", 1, true)
    assert.is_truthy(second and first and second < first, r.out) -- newest first
    assert.is_truthy(r.out:find("folded repetitions 100", 1, true), r.out)
    assert.is_truthy(r.out:find("cost to the script per span: recorded %d+ ns"), r.out)
    local j = H.json(H.moonspan({"report", "--overhead", "--json", "--limit", "1"}, {db = db}).out)
    assert.are.equal(1, #j)
    assert.are.equal("debug", j[1].level)
    assert.are.equal(100, j[1].fold_repetitions)
    assert.is_true(j[1].telemetry_ms > 0 and j[1].telemetry_ms < j[1].run_ms)
  end)

  it("refuses options that choose traces rather than runs", function()
    local r = H.run_ok("print(1)")
    local bad = H.moonspan({"report", "--overhead", "--name", "x*"}, {db = r.db})
    assert.are.equal(2, bad.code)
    assert.is_truthy(bad.err:find("--overhead reports runs, not traces", 1, true), bad.err)
    bad = H.moonspan({"report", "--limit", "3"}, {db = r.db})
    assert.are.equal(2, bad.code)
    assert.is_truthy(bad.err:find("--limit chooses runs for --overhead", 1, true), bad.err)
  end)
end)

describe("readers of folds and sampled-out traces", function()
  local FOLDED = [[
    local FOLD = {fold = true}
    for r = 1, 5 do
      trace("rerank", function()
        span("loop", function()
          for i = 1, 200 do
            pcall(span, "score_doc", FOLD, function()
              local x = 0
              for j = 1, (i % 10 == 0) and 5000 or 50 do x = x + j end
              if i == 7 then error("bad doc") end
            end)
          end
        end)
      end)
    end
  ]]

  it("report counts every repetition, with percentiles marked as estimates", function()
    local r = H.run_ok(FOLDED)
    local j = H.json(H.moonspan({"report", "--json"}, {db = r.db}).out)
    local step
    for _, s in ipairs(j.steps) do if s.name == "score_doc" then step = s end end
    assert.are.equal(1000, step.count)
    assert.is_true(step.approximate)
    assert.are.equal(1 / 128, step.relative_error)
    assert.is_true(step.p95_ms > step.p50_ms * 5, "every 10th is ~100x slower") -- p95 sees them
    local total = H.scalar(r.db, "SELECT sum(fold_total_ns) FROM spans WHERE kind = 'fold'")
    assert.is_true(math.abs(step.total_ms - total / 1e6) < 1e-6)
    local text = H.moonspan({"report"}, {db = r.db}).out
    assert.is_truthy(text:find("loop/score_doc%s+1000"), text)
    assert.is_truthy(text:find("~ percentiles from folded spans' histograms: within 0.8%", 1, true), text)
  end)

  it("show draws a fold as one line with its count, total and spread, and JSON gives them all", function()
    local r = H.run_ok(FOLDED)
    local id = H.scalar(r.db, "SELECT trace_id FROM traces WHERE name = 'rerank' LIMIT 1")
    local out = H.moonspan({"show", id}, {db = r.db}).out
    assert.is_truthy(out:find("score_doc \u{d7}200", 1, true), out)
    assert.is_truthy(out:find("folded: p50 ~", 1, true), out)
    assert.is_truthy(out:find("1 failed  first error error: ", 1, true), out)
    local j = H.json(H.moonspan({"show", "--json", id}, {db = r.db}).out)
    local fold = j.spans[1].children[1].children[1]
    assert.are.equal("fold", fold.kind)
    assert.are.equal(200, fold.fold.count)
    assert.are.equal(1, fold.fold.errors)
    assert.is_true(fold.fold.min_ms <= fold.fold.p50_ms and fold.fold.p95_ms <= fold.fold.max_ms)
  end)

  it("report says its steps come from the traces that kept their spans; show says a trace was sampled out", function()
    local r = H.run_ok([[
      for i = 1, 100 do trace("req", function() span("s", function() end) end) end
    ]], {run_args = {"--sample", "0.2"}})
    local out_n = H.scalar(r.db, "SELECT count(*) FROM traces WHERE sampled_out = 1")
    assert.is_true(out_n > 40)
    local j = H.json(H.moonspan({"report", "--json"}, {db = r.db}).out)
    assert.are.equal(100, j.requests.count)
    assert.are.equal(out_n, j.requests.sampled_out)
    assert.are.equal(100 - out_n, j.steps_from_requests)
    assert.are.equal(100 - out_n, j.steps[1].count)
    local text = H.moonspan({"report"}, {db = r.db}).out
    assert.is_truthy(text:find(string.format("from the %d requests that kept their spans; %d were sampled out",
                                             100 - out_n, out_n), 1, true), text)
    local id = H.scalar(r.db, "SELECT trace_id FROM traces WHERE sampled_out = 1 LIMIT 1")
    local show = H.moonspan({"show", id}, {db = r.db})
    assert.are.equal(0, show.code, show.err)
    assert.is_truthy(show.out:find("sampled out (--sample): its summary only; its 2 spans were not stored", 1, true),
                     show.out)
  end)
end)

describe("examples/granularity/pipeline.lua", function()
  -- What its README says each level shows, on the example itself.
  local function steps(db)
    local j = H.json(H.moonspan({"report", "--json"}, {db = db}).out)
    local by = {}
    for _, s in ipairs(j.steps) do by[table.concat(s.path, "/")] = s end
    return by
  end
  local example = H.root .. "/examples/granularity/pipeline.lua"

  it("shows rerank alone at info, score_doc at debug, tokenize at trace, and the same folded", function()
    local dir = H.tmpdir("granularity")
    local function run(flags)
      local db = dir .. "/" .. #flags .. ".db"
      local args = {"run", "--quiet"}
      for _, f in ipairs(flags) do args[#args + 1] = f end
      args[#args + 1] = example
      args[#args + 1] = "6"
      local r = H.moonspan(args, {db = db})
      assert.are.equal(0, r.code, r.err)
      return db
    end
    local info = steps(run({}))
    assert.is_truthy(info.rerank)
    assert.is_nil(info["rerank/score_doc"])
    local debug = steps(run({"--level", "debug"}))
    assert.are.equal(6 * 40, debug["rerank/score_doc"].count)
    assert.is_nil(debug["rerank/score_doc/tokenize"])
    local trace = steps(run({"--level", "trace"}))
    local tok, ovl = trace["rerank/score_doc/tokenize"], trace["rerank/score_doc/overlap"]
    assert.is_true(tok.total_ms > 5 * ovl.total_ms, "tokenize is where score_doc's time goes")
    local folded_db = run({"--level", "trace", "--fold", "5"})
    local folded = steps(folded_db)
    assert.are.equal(6 * 40, folded["rerank/score_doc"].count)
    assert.is_true(folded["rerank/score_doc/tokenize"].approximate)
    assert.is_true(H.scalar(folded_db, "SELECT count(*) FROM spans") < 6 * 40)
  end)
end)
