-- Span-level assertions end to end: spans(ctx) in a suite, the scorers
-- over a case's spans, suite-wide gates, scorer names and llm_judge
-- replies it cannot parse; the real binary and a real store.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local cjson = require "cjson"

local function eval(dir, body, args)
  local f = H.write(dir .. "/suite.lua", body)
  local all = {"eval"}
  for _, a in ipairs(args or {}) do all[#all + 1] = a end
  all[#all + 1] = f
  return H.moonspan(all, {db = dir .. "/s.db"})
end

-- Each `src` put in the suite's `field` list (scorers or gates) must stop
-- the suite as it loads: exit 2, its message, and the suite's own line.
local function refused_at_load(field, cases)
  for src, msg in pairs(cases) do
    local d = H.tmpdir("bad")
    local rr = eval(d, 'return suite "s" { dataset = {{id = "a"}}, run = print, ' .. field .. ' = { ' .. src .. ' } }')
    assert.are.equal(2, rr.code, src)
    assert.matches(msg, rr.err, 1, true)
    assert.matches("suite.lua:1:", rr.err, 1, true)
  end
end

local function results(dir)
  local rows = H.query(dir .. "/s.db", "SELECT case_id, pass, error, scores FROM eval_results ORDER BY id")
  for _, r in ipairs(rows) do r.scores = cjson.decode(r.scores) end
  return rows
end

local function score_of(row, name)
  for _, s in ipairs(row.scores) do
    if s.name == name then return s end
  end
  error("no scorer " .. name .. " in " .. cjson.encode(row.scores))
end

describe("spans(ctx)", function()
  it("lists the case's ended spans as plain tables, without the eval's own spans", function()
    local dir = H.tmpdir("spans")
    local r = eval(dir, [[
      return suite "s" {
        dataset = {{id = "a"}},
        run = function()
          span("retrieve", {k = 3}, function()
            llm.call{model = "mock", messages = {{role = "user", content = "one two three"}},
                     mock = {reply = "four five"}}
          end)
          pcall(span, "tool", function() error({type = "ValueError", message = "no such city"}) end)
          for i = 1, 4 do span("score_doc", {fold = true}, function() end) end
          return "ok"
        end,
        scorers = { function(out, case, ctx)
          local f = io.open(]] .. string.format("%q", dir .. "/spans.json") .. [[, "w")
          f:write(require("cjson").encode(spans(ctx)))
          f:close()
          return true
        end },
      }]])
    assert.are.equal(0, r.code, r.err)
    local list = cjson.decode(H.read(dir .. "/spans.json"))
    local by = {}
    for _, s in ipairs(list) do by[s.name] = s end
    local names = {}
    for _, s in ipairs(list) do names[#names + 1] = s.name end
    -- begin order; no eval.run, no eval.score:*
    assert.are.same({"retrieve", "chat mock", "tool", "score_doc"}, names)
    assert.are.equal("retrieve", by.retrieve.path)
    assert.are.equal("retrieve/chat mock", by["chat mock"].path)
    assert.are.same({k = 3}, by.retrieve.attrs)
    assert.are.equal(0, by.retrieve.parent)
    assert.are.equal(by.retrieve.index, by["chat mock"].parent)
    local call = by["chat mock"]
    -- the mock counts words and punctuation of the whole request (7 in) and of "four five" (2 out)
    assert.are.same({"llm", "mock", "mock", 7, 2, 0},
                    {call.kind, call.model, call.provider, call.input_tokens, call.output_tokens, call.retries})
    assert.is_true(math.abs(call.cost_usd - (7 * 1 + 2 * 5) / 1e6) < 1e-12) -- mock: $1 in, $5 out per million
    assert.is_true(by.retrieve.duration_ms >= call.duration_ms)
    assert.is_nil(by.retrieve.input_tokens) -- not an LLM call: no tokens, not 0
    assert.are.same({"error", "ValueError", "no such city", true},
                    {by.tool.status, by.tool.error_type, by.tool.error, by.tool.error_own})
    assert.are.same({"fold", 4, 0}, {by.score_doc.kind, by.score_doc.count, by.score_doc.errors})
    assert.is_true(by.score_doc.max_ms >= by.score_doc.min_ms)
  end)

  it("sees the spans of a pipeline that opens its own trace(), with production's paths", function()
    local dir = H.tmpdir("own-trace")
    local r = eval(dir, [[
      local function rag(q)
        return trace("rag_answer", function()
          span("retrieve", function() end)
          return span("generate", function() return q end)
        end)
      end
      return suite "s" {
        dataset = {{id = "a", input = "q"}},
        run = function(c) return rag(c.input) end,
        scorers = { function(out, case, ctx)
          local paths = {}
          for _, s in ipairs(spans(ctx)) do paths[#paths + 1] = s.path end
          return true, table.concat(paths, ",")
        end, span_p95("generate", 1000) },
      }]])
    assert.are.equal(0, r.code, r.out .. r.err)
    local row = results(dir)[1]
    assert.are.equal("retrieve,generate", row.scores[1].reason)
    assert.is_true(row.scores[2].pass)
  end)

  it("is whole when the trace was written in parts while the case ran", function()
    local dir = H.tmpdir("cut")
    -- 5,000 spans pass the cut size (4,096), and a 250 ms wait its age:
    -- both cut the open trace, so "early" and most "step"s left memory
    local r = eval(dir, [[
      return suite "s" {
        dataset = {{id = "a"}},
        run = function()
          span("early", function() end)
          moonspan.sleep_ms(250)
          for i = 1, 5000 do span("step", function() end) end
          span("late", function() end)
          return "ok"
        end,
        scorers = { function(out, case, ctx)
          local n, early, late = 0, 0, 0
          for _, s in ipairs(spans(ctx)) do
            if s.name == "step" then n = n + 1 end
            if s.name == "early" then early = early + 1 end
            if s.name == "late" then late = late + 1 end
          end
          return n == 5000 and early == 1 and late == 1, string.format("%d %d %d", n, early, late)
        end },
      }]])
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.are.equal("5000 1 1", results(dir)[1].scores[1].reason)
    -- the trace was indeed written in parts
    assert.is_true(H.scalar(dir .. "/s.db", "SELECT count(*) FROM spans WHERE name = 'step'") == 5000)
  end)

  it("gives a fold cut in two while the case ran as one entry, and span_p95 over folds says it is an estimate", function()
    local dir = H.tmpdir("folds")
    local r = eval(dir, [[
      return suite "s" {
        dataset = {{id = "a"}},
        run = function()
          for i = 1, 3 do span("generate", {fold = true}, function() moonspan.sleep_ms(2) end) end
          moonspan.sleep_ms(250) -- the trace is cut during the wait: the fold's first part is written
          for i = 1, 2 do span("generate", {fold = true}, function() moonspan.sleep_ms(2) end) end
          return "ok"
        end,
        scorers = { function(out, case, ctx)
          local list = spans(ctx)
          local f = list[1]
          return #list == 1 and f.kind == "fold" and f.count == 5 and f.min_ms >= 2 and f.max_ms >= f.min_ms
                 and math.abs(f.total_ms - f.duration_ms) < 1e-9,
                 string.format("%d %s %d", #list, f.kind, f.count)
        end, span_p95("generate", 1000) },
        gates = { p95_ms("generate", 1000) },
      }]])
    assert.are.equal(0, r.code, r.out .. r.err)
    local row = results(dir)[1]
    assert.are.equal("1 fold 5", row.scores[1].reason)
    assert.matches("^generate p95 ~%d+%.%d+ ms over 5 spans <= 1%.00 s$", row.scores[2].reason)
    assert.matches('pass p95_ms%("generate", 1000%): ~%d+%.%d+ ms over 5 spans in 1 case %(with folded spans: an '
                   .. "estimate%) <= 1000 ms", r.out)
    -- the fold was written in more than one record, as the store shows
    assert.is_true(H.scalar(dir .. "/s.db", "SELECT count(*) FROM spans WHERE name = 'generate'") >= 2)
  end)

  it("outside moonspan eval, ctx:spans() of a trace cut without a kept list raises instead of answering part", function()
    local r = H.run_script([[
      trace("long", function(ctx)
        for i = 1, 5000 do span("step", function() end) end
        local ok, err = pcall(ctx.spans, ctx)
        print(ok, err)
      end)
      moonspan.keep_spans(true)
      trace("kept", function(ctx)
        for i = 1, 5000 do span("step", function() end) end
        print(#ctx:spans())
      end)]])
    assert.are.equal(0, r.code, r.err)
    assert.matches("false\t.*ctx:spans%(%): trace 'long' was written in parts while open and %d+ of its spans are "
                   .. "no longer in memory; call moonspan.keep_spans%(true%) before the trace starts", r.out)
    assert.matches("\n5000\n", r.out)
  end)
end)

describe("span-level scorers", function()
  local dir, r, rows
  setup(function()
    dir = H.tmpdir("scorers")
    r = eval(dir, [[
      local function call(text, opts)
        local req = {model = "mock", messages = {{role = "user", content = text}}, mock = {reply = "a b c d"},
                     backoff_ms = 1}
        for k, v in pairs(opts or {}) do req[k] = v end
        return llm.call(req)
      end
      return suite "s" {
        dataset = {{id = "fine"}, {id = "heavy"}, {id = "slow"}, {id = "flaky"}, {id = "broken"}},
        run = function(c)
          for i = 1, 3 do
            span("generate", function()
              if c.id == "slow" and i == 3 then moonspan.sleep_ms(60) end
              call(c.id == "heavy" and string.rep("word ", 50) or "hi")
            end)
          end
          if c.id == "flaky" then
            span("fetch", function() call("x", {mock = {reply = "ok", fail = {status = 429, times = 3}}, retries = 3}) end)
          end
          if c.id == "broken" then pcall(span, "tool", function() error("disk full") end) end
          return c.id
        end,
        scorers = { span_p95("generate", 40), max_retries(2), no_error_spans(),
                    max_step_tokens("generate", 30), max_step_cost("generate", 0.00005),
                    span_p95("rerank", 10) },
        threshold = 0,
      }]])
    rows = {}
    for _, row in ipairs(results(dir)) do rows[row.case_id] = row end
  end)

  it("pass with a reason that gives the value", function()
    assert.are.equal(0, r.code, r.err)
    local fine = rows.fine
    assert.matches("^generate p95 .+ over 3 spans <= 40%.0 ms$", score_of(fine, "span_p95").reason)
    assert.is_true(score_of(fine, "span_p95").pass)
    assert.are.same({true, "no span retried"}, {score_of(fine, "max_retries").pass, score_of(fine, "max_retries").reason})
    assert.are.same({true, "none of 6 spans failed"},
                    {score_of(fine, "no_error_spans").pass, score_of(fine, "no_error_spans").reason})
    -- the mock counts 5 tokens in for "hi" (with the request's roles), 4 out for "a b c d"
    assert.are.equal("generate used 9 tokens (5 in, 4 out), the most of its 3 calls <= 30",
                     score_of(fine, "max_step_tokens").reason)
    -- 5 x $1 + 4 x $5 per million
    assert.are.equal("generate cost $0.000025, the most of its 3 calls <= $0.000050",
                     score_of(fine, "max_step_cost").reason)
  end)

  it("fail naming the offending span and its value", function()
    local function failing(row, name)
      local s = score_of(row, name)
      assert.is_false(s.pass, name .. ": " .. s.reason)
      return s.reason
    end
    assert.matches("^generate p95 %d+%.%d ms over 3 spans > 40%.0 ms %(slowest generate 6%d%.%d ms%)$",
                   failing(rows.slow, "span_p95"))
    assert.are.equal("fetch/chat mock retried 3 times > 2", failing(rows.flaky, "max_retries"))
    assert.matches("^tool failed: .*suite%.lua:19: disk full$", failing(rows.broken, "no_error_spans"))
    assert.are.equal("generate used 58 tokens (54 in, 4 out), the most of its 3 calls > 30",
                     failing(rows.heavy, "max_step_tokens"))
    assert.are.equal("generate cost $0.000074, the most of its 3 calls > $0.000050", failing(rows.heavy, "max_step_cost"))
    -- and the other cases pass those
    assert.is_true(score_of(rows.fine, "max_retries").pass and score_of(rows.slow, "no_error_spans").pass)
  end)

  it("fail when the step never ran, saying so", function()
    assert.are.same({"span_p95", false, "no span named 'rerank' in the case's trace (its spans: generate, chat mock)"},
                    {rows.fine.scores[6].name, rows.fine.scores[6].pass, rows.fine.scores[6].reason})
    assert.are.equal("no span named 'rerank' in the case's trace (its spans: generate, chat mock, tool)",
                     rows.broken.scores[6].reason)
  end)

  it("refuse bad arguments when the suite loads: exit 2 with the fix", function()
    refused_at_load("scorers", {
      ['span_p95(500)'] = 'span_p95: expected a step, a span name such as "generate"',
      ['span_p95("generate")'] = "span_p95: expected a limit in ms (a number >= 0), got nil",
      ['max_retries(1.5)'] = "max_retries: expected a whole number of retries >= 0, got 1.5",
      ['max_step_tokens("generate", -1)'] = "max_step_tokens: expected a number of tokens (a number >= 0), got -1",
      ['max_step_cost("g", "cheap")'] = 'max_step_cost: expected a limit in dollars (a number >= 0), got "cheap"',
    })
  end)
end)

describe("suite gates", function()
  it("are checked over all cases, printed with their values, stored with the run, and fail the suite", function()
    local dir = H.tmpdir("gates")
    local r = eval(dir, [[
      return suite "g" {
        dataset = {{id = "a"}, {id = "b"}, {id = "c"}, {id = "d"}},
        run = function(c)
          span("generate", function() moonspan.sleep_ms(c.id == "d" and 80 or 5) end)
          return c.id
        end,
        scorers = { {name = "not_d", score = function(out) return out ~= "d" end} },
        threshold = 0.5,
        gates = { p95_ms("generate", 50), pass_rate(0.7), mean_score("not_d", 0.7), max_cost_usd_total(1) },
      }]], {"--junit", dir .. "/junit.xml"})
    assert.are.equal(1, r.code, r.err)
    assert.matches("g: FAILED, pass rate 75.0% (3/4) >= threshold 50.0%; 1 gate failed", r.out, 1, true)
    assert.matches("gates: 1 of 4 failed", r.out, 1, true)
    assert.matches('FAIL p95_ms%("generate", 50%): %d+%.%d ms over 4 spans in 4 cases > 50%.0 ms', r.out)
    assert.matches("pass pass_rate(0.7): 75.0% (3/4) >= 70.0%", r.out, 1, true)
    assert.matches('pass mean_score("not_d", 0.7): mean 0.750 over 4 cases >= 0.7', r.out, 1, true)
    assert.matches("pass max_cost_usd_total(1): $0 in all <= $1.0000", r.out, 1, true)
    local run = H.query(dir .. "/s.db", "SELECT status, config FROM eval_runs")[1]
    assert.are.equal("failed", run.status)
    local g = cjson.decode(run.config).gates
    assert.are.equal(4, #g)
    assert.are.same({'p95_ms("generate", 50)', false, 50}, {g[1].name, g[1].pass, g[1].limit})
    assert.is_true(g[1].value > 50)
    assert.are.same({0.75, true}, {g[2].value, g[2].pass})
    -- JUnit: each gate a test case of the suite, the failed one failing
    local xml = H.read(dir .. "/junit.xml")
    assert.matches('<testsuite name="g" tests="8" failures="2"', xml, 1, true)
    assert.matches('<testcase name="gate p95_ms%(&quot;generate&quot;, 50%)" classname="g" time="0.000">%s*'
                   .. '<failure message="%d+%.%d ms over 4 spans in 4 cases &gt; 50%.0 ms" type="gate"', xml)
    assert.matches('<testcase name="gate pass_rate(0.7)" classname="g" time="0.000"/>', xml, 1, true)
    -- moonspan report shows them with the suite's latest run
    local rep = H.moonspan({"report"}, {db = dir .. "/s.db"})
    assert.are.equal(0, rep.code, rep.err)
    assert.matches("\n    gates: 1 of 4 failed\n      p95_ms%(\"generate\", 50%): %d+%.%d ms over 4 spans in 4 cases > 50%.0 ms\n",
                   rep.out)
    local js = H.json(H.moonspan({"report", "--json"}, {db = dir .. "/s.db"}).out)
    assert.are.equal(4, #js.evals[1].gates)
    assert.are.same({'p95_ms("generate", 50)', false}, {js.evals[1].gates[1].name, js.evals[1].gates[1].pass})
  end)

  it("pass the suite when every gate passes", function()
    local dir = H.tmpdir("gates-ok")
    local r = eval(dir, [[
      return suite "g" {
        dataset = {{id = "a"}, {id = "b"}},
        run = function(c) span("generate", function() end) return c.id end,
        gates = { p95_ms("generate", 1000), pass_rate(1) },
      }]])
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.matches("gates: all 2 passed", r.out, 1, true)
    assert.matches("\n    gates: all 2 passed\n", H.moonspan({"report"}, {db = dir .. "/s.db"}).out, 1, true)
  end)

  it("refuse a gate over a scorer the suite does not have, and what is not a gate: exit 2", function()
    local dir = H.tmpdir("gates-bad")
    local r = eval(dir, [[return suite "g" { dataset = {{id = "a"}}, run = print, scorers = { exact("x") },
                                           gates = { mean_score("judge", 0.7) } }]])
    assert.are.equal(2, r.code)
    assert.matches('gates[1] mean_score("judge", 0.7): the suite has no scorer named "judge" (its scorers: exact)',
                   r.err, 1, true)
    r = eval(dir, [[return suite "g" { dataset = {{id = "a"}}, run = print, scorers = { exact("x") },
                                     gates = { p95_ms } }]])
    assert.are.equal(2, r.code)
    assert.matches("gates[1] is the constructor p95_ms itself; call it: p95_ms(...)", r.err, 1, true)
    r = eval(dir, [[return suite "g" { dataset = {{id = "a"}}, run = print, gates = { pass_rate(90) } }]])
    assert.are.equal(2, r.code)
    assert.matches("pass_rate: expected a number between 0 and 1 (0.9 = 90%), got 90", r.err, 1, true)
  end)

  it("refuse bad arguments with the scorers' checks: exit 2, the suite's line, the fix", function()
    refused_at_load("gates", {
      ['p95_ms(500, 1)'] = 'p95_ms: expected a step, a span name such as "generate" (or a path "retrieve/generate"), got 500',
      ['p95_ms("generate")'] = "p95_ms: expected a limit in ms (a number >= 0), got nil",
      ['max_cost_usd_total(-1)'] = "max_cost_usd_total: expected a limit in dollars (a number >= 0), got -1",
    })
  end)
end)

describe("scorer names and suites without scorers", function()
  it("names a table scorer by its name, a plain function by where it is defined", function()
    local dir = H.tmpdir("names")
    local r = eval(dir, [[
      return suite "n" {
        dataset = {{id = "a"}},
        run = function() return "x" end,
        scorers = {
          {name = "cites_sources", score = function() return false, "no sources" end},
          function() return true end,
        },
        threshold = 0,
      }]])
    assert.are.equal(0, r.code, r.err)
    local row = results(dir)[1]
    assert.are.same({"cites_sources", "suite.lua:6"}, {row.scores[1].name, row.scores[2].name})
    assert.matches("cites_sources: no sources", r.out, 1, true)
  end)

  it("refuses a suite with neither scorers nor gates: exit 2 naming the fix", function()
    local dir = H.tmpdir("none")
    local r = eval(dir, 'return suite "bare" { dataset = {{id = "a"}}, run = function() return 1 end }')
    assert.are.equal(2, r.code)
    assert.matches('suite.lua:1: suite "bare": has no scorers, so every case would pass without being judged; '
                   .. "add scorers = { ... }", r.err, 1, true)
    assert.are.equal("", r.out)
    r = eval(dir, 'return suite "bare" { dataset = {{id = "a"}}, run = print, scorers = {{name = 3, score = print}} }')
    assert.are.equal(2, r.code)
    assert.matches("scorers[1]: name must be a non-empty string", r.err, 1, true)
  end)
end)

describe("llm_judge", function()
  it("a reply it cannot parse is an error of the scorer, not a score of 0", function()
    local dir = H.tmpdir("judge")
    local r = eval(dir, [[
      return suite "j" {
        dataset = {{id = "a", input = "2+2?"}, {id = "b", input = "3+3?"}},
        run = function(c) return "4" end,
        scorers = { llm_judge{model = "mock", rubric = "Is it right?", mock = {reply = function(req)
          if req.messages[1].content:find("2+2", 1, true) then return "Looks right to me!" end
          return '{"score": 0.25, "reason": "wrong sum"}'
        end}} },
        threshold = 0,
      }]])
    assert.are.equal(0, r.code, r.err)
    local rows = results(dir)
    local a, b = rows[1].scores[1], rows[2].scores[1]
    assert.are.equal("llm_judge: could not parse the judge's reply: it is not JSON {\"score\", \"reason\"}: "
                     .. '"Looks right to me!"', rows[1].error)
    assert.are.same({true, false}, {a.error, a.pass})
    assert.matches("^llm_judge: could not parse the judge's reply", a.reason)
    -- a parsed low score is a score, not an error
    assert.are.same({0.25, "wrong sum", false}, {b.score, b.reason, b.pass})
    assert.is_nil(b.error)
    assert.is_nil(rows[2].error)
    assert.matches("1 of the failures raised an error", r.out, 1, true)
  end)
end)

describe("examples/evals/rag_steps_suite.lua", function()
  it("runs as it is: one case fails a span assertion naming the span, the gates pass, exit 0", function()
    local dir = H.tmpdir("example")
    local r = H.moonspan({"eval", H.root .. "/examples/evals/rag_steps_suite.lua"}, {db = dir .. "/s.db"})
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.matches("rag-steps  peru  max_retries: retrieve retried 2 times > 1", r.out, 1, true)
    assert.matches("rag-steps: passed, pass rate 75.0% (3/4) >= threshold 70.0%", r.out, 1, true)
    assert.matches("gates: all 4 passed", r.out, 1, true)
    assert.matches('pass mean_score("grounded", 0.9): mean 1.000 over 4 cases >= 0.9', r.out, 1, true)
  end)
end)
