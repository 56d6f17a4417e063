-- Eval suites (scripts/eval.lua, scorers.lua, junit.lua) in process: the
-- scorers' scores and reasons, pass rules, datasets and their bad input,
-- the glob filter, repeat and flakiness, summaries and the baseline diff,
-- JUnit output parsed back, real concurrency, and the alert webhook
-- (received by tests/fake_llm). moonspan.eval_store is an in-memory stand-in.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local EH = dofile(here .. "eval_helpers.lua")
local cjson = require "cjson"

local E = require "moonspan.eval"
local S = require "moonspan.scorers"
local junit = require "moonspan.junit"

-- Runs a scorer on an output and a case; returns the result table.
local function score(sc, output, case, ctx)
  return S.apply(sc, output, case or {}, ctx or {})
end

-- Writes a suite file (and other files) into a fresh folder; returns its path.
local function suite_file(src, files)
  local dir = H.tmpdir("suite")
  for name, text in pairs(files or {}) do H.write(dir .. "/" .. name, text) end
  return H.write(dir .. "/suite.lua", src), dir
end

local function jsonl(cases)
  local lines = {}
  for i, c in ipairs(cases) do lines[i] = cjson.encode(c) end
  return table.concat(lines, "\n") .. "\n"
end

local function results_of(r, run)
  return r.store.rows[run or #r.store.runs]
end

describe("scorers", function()
  it("exact compares values (deeply for tables) and says what differed", function()
    local r = score(S.exact("Paris"), "Paris")
    assert.are.same({1, true}, {r.score, r.pass})
    r = score(S.exact("Paris"), "Lyon")
    assert.are.same({0, false}, {r.score, r.pass})
    assert.are.equal('expected "Paris", got "Lyon"', r.reason)
    r = score(S.exact(S.case_field("expected")), {a = {1, 2}}, {expected = {a = {1, 2}}})
    assert.is_true(r.pass)
    r = score(S.exact(42), "42")
    assert.is_false(r.pass)
    assert.matches("a string, expected a number", r.reason, 1, true)
    assert.has_error(function() score(S.exact(S.case_field("expected")), "x", {}) end,
                     "exact: the expected value is nil (case.expected is missing from the case)")
  end)

  it("contains looks for plain text, optionally ignoring case", function()
    local sc = S.contains(S.case_field("expected"))
    assert.is_true(score(sc, "The capital of France is Paris.", {expected = "Paris"}).pass)
    local r = score(sc, "It is Lyon.", {expected = "Paris"})
    assert.are.equal(0, r.score)
    assert.are.equal('output does not contain "Paris" (got "It is Lyon.")', r.reason)
    assert.is_true(score(S.contains("a.c"), "xa.cx").pass)   -- plain, not a pattern
    assert.is_false(score(S.contains("a.c"), "xabcx").pass)
    assert.is_false(score(S.contains("paris"), "PARIS").pass)
    assert.is_true(score(S.contains("paris", {ignore_case = true}), "PARIS").pass)
    assert.is_true(score(S.contains(42), "answer: 42").pass)
    assert.are.equal("output is nil", score(S.contains("x"), nil).reason)
  end)

  it("regex takes Lua patterns and rejects a malformed one when the suite is written", function()
    assert.is_true(score(S.regex("^%d+$"), "2024").pass)
    local r = score(S.regex("^%d+$"), "20x4")
    assert.is_false(r.pass)
    assert.matches('does not match Lua pattern "^%d+$"', r.reason, 1, true)
    assert.is_false(score(S.regex("\\d"), "7").pass) -- not PCRE
    local ok, err = pcall(S.regex, "[a-")
    assert.is_false(ok)
    assert.matches('regex: "[a-" is not a valid Lua pattern', err, 1, true)
  end)

  it("json_valid and json_field read the output as JSON", function()
    assert.is_true(score(S.json_valid(), '{"a": 1}').pass)
    assert.is_true(score(S.json_valid(), {a = 1}).pass)
    local r = score(S.json_valid(), "{nope")
    assert.is_false(r.pass)
    assert.matches("^output is not JSON %(", r.reason)
    local doc = '{"answer": {"city": "Paris", "pop": 2100000}, "items": [{"name": "a"}, {"name": "b"}]}'
    assert.is_true(score(S.json_field("answer.city", "Paris"), doc).pass)
    assert.is_true(score(S.json_field("answer.pop", 2100000), doc).pass)
    assert.is_true(score(S.json_field("items.2.name", S.case_field("want")), doc, {want = "b"}).pass)
    assert.is_true(score(S.json_field("answer.city"), doc).pass)
    r = score(S.json_field("answer.city", "Lyon"), doc)
    assert.are.equal('answer.city is "Paris", expected "Lyon"', r.reason)
    r = score(S.json_field("answer.mayor.name"), doc)
    assert.are.equal("answer.mayor.name is missing from the output (no answer.mayor)", r.reason)
    r = score(S.json_field("a"), "not json")
    assert.matches("^output is not JSON", r.reason)
  end)

  it("max_latency_ms and max_cost_usd judge what the case measured", function()
    assert.is_true(score(S.max_latency_ms(100), nil, {}, {latency_ms = 99.5}).pass)
    local r = score(S.max_latency_ms(100), nil, {}, {latency_ms = 250})
    assert.are.same({0, "latency 250.0 ms > 100.0 ms"}, {r.score, r.reason})
    assert.is_true(score(S.max_cost_usd(0.01), nil, {}, {cost_usd = 0.004}).pass)
    r = score(S.max_cost_usd(0.01), nil, {}, {cost_usd = 0.02})
    assert.are.equal("cost $0.0200 > $0.0100", r.reason)
    r = score(S.max_cost_usd(0.01), nil, {}, {cost_usd = nil})
    assert.is_false(r.pass)
    assert.matches("^cost unknown", r.reason)
    assert.has_error(function() S.max_latency_ms(-1) end)
    assert.has_error(function() S.max_cost_usd("cheap") end)
  end)

  it("llm_judge asks for JSON and parses the score and reason", function()
    local seen
    local sc = S.llm_judge{model = "mock", rubric = "Names the right capital.", mock = {reply = function(req)
      seen = req
      return '{"score": 0.8, "reason": "right city, terse"}'
    end}}
    local r = score(sc, "Paris", {input = "Capital of France?", expected = "Paris"})
    assert.are.same({0.8, true, "right city, terse"}, {r.score, r.pass, r.reason})
    local prompt = seen.messages[1].content
    assert.matches("Names the right capital.", prompt, 1, true)
    assert.matches("Capital of France?", prompt, 1, true)
    assert.matches('{"score":', prompt, 1, true)
    assert.are.equal(0, seen.temperature)
    assert.is_nil(seen.rubric)
    -- pass_at decides
    local strict = S.llm_judge{model = "mock", rubric = "x", pass_at = 0.9,
                               mock = {reply = '{"score": 0.8, "reason": "ok"}'}}
    assert.is_false(score(strict, "a").pass)
    -- fenced JSON and prose around it are fine
    assert.are.equal(0.5, S.parse_judgement('Sure.\n```json\n{"score": 0.5, "reason": "meh"}\n```'))
    assert.are.equal(1, S.parse_judgement('My verdict: {"score": 1, "reason": "good"} done'))
    -- unusable replies are no score (nil) and say why; the scorer raises with it
    local s, why = S.parse_judgement("I think it is great")
    assert.is_nil(s)
    assert.matches('^it is not JSON {"score", "reason"}', why)
    s, why = S.parse_judgement('{"score": 7, "reason": "out of ten"}')
    assert.is_nil(s)
    assert.matches("outside 0..1", why, 1, true)
    s, why = S.parse_judgement('{"reason": "no score"}')
    assert.is_nil(s)
    assert.matches("no numeric score", why, 1, true)
    local garbled = S.llm_judge{model = "mock", rubric = "x", mock = {reply = "ten out of ten!"}}
    assert.has_error(function() score(garbled, "a") end,
                     "llm_judge: could not parse the judge's reply: it is not JSON {\"score\", \"reason\"}: "
                     .. '"ten out of ten!"')
    assert.has_error(function() S.llm_judge{rubric = "x"} end)
  end)

  it("a function scorer passes at 0.5, or on true; a table scorer has its own pass_at", function()
    local half = S.normalise(function() return 0.5, "half" end, 1)
    assert.are.same({0.5, true, "half"}, {score(half).score, score(half).pass, score(half).reason})
    local low = S.normalise(function() return 0.49 end, 1)
    assert.is_false(score(low).pass)
    local yes = S.normalise(function(out) return out == "ok" end, 1)
    assert.are.same({1, true}, {score(yes, "ok").score, score(yes, "ok").pass})
    assert.are.same({0, false}, {score(yes, "no").score, score(yes, "no").pass})
    local named = S.normalise({name = "tone", pass_at = 0.9, score = function() return 0.85 end}, 2)
    assert.are.equal("tone", named.name)
    assert.is_false(score(named).pass)
    -- the scorer gets output, case and ctx
    local got
    local spy = S.normalise(function(o, c, x) got = {o, c.id, x.latency_ms} return true end, 1)
    score(spy, "out", {id = "c1"}, {latency_ms = 12})
    assert.are.same({"out", "c1", 12}, got)
    -- bad scores raise (the runner turns that into a failed case), naming the scorer by where it is
    -- defined
    local line = debug.getinfo(1, "l").currentline
    assert.has_error(function() score(S.normalise(function() return 1.5 end, 3)) end,
                     "eval_dsl_spec.lua:" .. (line + 1) .. " returned 1.5, expected a score in [0, 1] or a boolean")
    assert.has_error(function() score(S.normalise(function() end, 3)) end,
                     "eval_dsl_spec.lua:" .. (line + 3) .. " returned nothing, expected a score in [0, 1] or a boolean")
  end)

  it("rejects what is not a scorer, and a constructor that was not called", function()
    local sc, err = S.normalise({pattern = "x"}, 2)
    assert.is_nil(sc)
    assert.matches("scorers[2]: unknown scorer type (a table without a score function)", err, 1, true)
    sc, err = S.normalise("contains", 1)
    assert.matches("unknown scorer type (a string)", err, 1, true)
    sc, err = S.normalise(S.json_valid, 3)
    assert.are.equal("scorers[3] is the constructor json_valid itself; call it: json_valid(...)", err)
  end)
end)

describe("the suite DSL", function()
  it("builds a suite with defaults and normalised scorers", function()
    local s = E.suite "demo" {dataset = {{id = "a", input = 1}}, run = function(c) return c.input end,
                              scorers = {S.exact(1), function() return true end}}
    assert.is_true(E.is_suite(s))
    assert.are.equal(1, s.threshold)
    assert.are.equal("exact", s.scorers[1].name)
    assert.matches("^eval_dsl_spec%.lua:%d+$", s.scorers[2].name)
  end)

  local function load_err(src, files)
    local path = suite_file(src, files)
    local suites, err = E.load_file(path)
    assert.is_nil(suites)
    return err, path
  end

  it("names the file and line of a suite without run, cases, or with a bad field", function()
    local err, path = load_err('\n\nreturn suite "s" { scorers = {function() return true end},\n  dataset = {{id = "a"}},\n}\n')
    assert.are.equal(path .. ':3: suite "s": run is missing: add run = function(case) ... return output end', err)
    err, path = load_err('return suite "s" { scorers = {function() return true end}, run = function() end }')
    assert.matches(path .. ':1: suite "s": has no cases', err, 1, true)
    err = load_err('return suite "s" { scorers = {function() return true end}, run = function() end, dataset = {} }')
    assert.matches('suite "s": has no cases: the dataset list is empty', err, 1, true)
    err = load_err('return suite "s" { scorers = {function() return true end}, run = function() end, dataset = {{}}, scorer = {} }')
    assert.matches("unknown field 'scorer'", err, 1, true)
    err = load_err('return suite "s" { scorers = {function() return true end}, run = function() end, dataset = {{}}, threshold = 90 }')
    assert.matches("threshold must be a pass rate between 0 and 1", err, 1, true)
    err, path = load_err('return suite "s" {\n run = function() end, dataset = {{}},\n scorers = {{kind = "x"}} }')
    assert.matches(path .. ':1: suite "s": scorers[1]: unknown scorer type', err, 1, true)
    err, path = load_err('local x = 1\nreturn suite "s" { run = function() end, dataset = {{}},\n'
                         .. '  scorers = { regex("[") } }')
    assert.matches(path .. ":3: regex:", err, 1, true)
    err, path = load_err('return suite "s" { run = print, dataset = {{}},\n  scorers = { contans("x") } }')
    assert.matches(path .. ":2: attempt to call a nil value (global 'contans'); the scorers are exact, contains,",
                   err, 1, true)
  end)

  it("says so when a suite file returns no suite", function()
    local err, path = load_err('suite "forgot-return" { scorers = {function() return true end}, run = function() end, dataset = {{}} }')
    assert.are.equal(path .. ': returned nil, expected suite "name" { dataset = ..., run = ..., scorers = {...} }'
                     .. " (is the `return` missing?)", err)
    err, path = load_err("return 42")
    assert.matches(path .. ": returned a number, expected suite", err, 1, true)
    err, path = load_err('return suite "x"')
    assert.matches(path .. ": returned a function", err, 1, true)
    err, path = load_err("return suite 'x' {")
    assert.matches(path .. ":1:", err, 1, true) -- Lua's own syntax error, with the line
  end)

  it("loads a list of suites from one file", function()
    local path = suite_file([[return {
      suite "a" { scorers = {function() return true end}, run = function() return 1 end, dataset = {{}} },
      suite "b" { scorers = {function() return true end}, run = function() return 2 end, dataset = {{}} } }]])
    local suites = assert(E.load_file(path))
    assert.are.same({"a", "b"}, {suites[1].name, suites[2].name})
  end)
end)

describe("datasets", function()
  it("parses JSONL: ids, blank lines, CRLF, nulls, integral numbers", function()
    local cases, derived = E.parse_jsonl('{"id": "a", "input": "x", "n": 3}\r\n\n   \n{"id": 7, "expected": null}\n',
                                         "d.jsonl")
    assert.are.equal(2, #cases)
    assert.are.same({"a", "7"}, {cases[1].id, cases[2].id})
    assert.are.equal("integer", math.type(cases[1].n))
    assert.is_nil(cases[2].expected)
    assert.are.same({}, derived)
  end)

  it("derives missing ids from line numbers", function()
    local cases, derived = E.parse_jsonl('{"id": "a"}\n{"input": "q"}\n\n{"input": "r"}', "d.jsonl")
    assert.are.same({"a", "line-2", "line-4"}, {cases[1].id, cases[2].id, cases[3].id})
    assert.are.same({"line-2", "line-4"}, derived)
  end)

  it("names file and line of a bad line", function()
    local text = '{"id": "a"}\n{"id": "b"}\n{"id": "c"\n'
    local cases, err = E.parse_jsonl(text, "capitals.jsonl")
    assert.is_nil(cases)
    assert.matches("^capitals.jsonl:3: not JSON %(.+%)$", err)
    _, err = E.parse_jsonl('{"id": "a"}\n[1, 2]\n', "x.jsonl")
    assert.matches("^x.jsonl:2: expected a JSON object", err)
    _, err = E.parse_jsonl('"just a string"\n', "x.jsonl")
    assert.matches("^x.jsonl:1: expected a JSON object", err)
    _, err = E.parse_jsonl('{"id": "a"}\n{"id": "a"}\n', "x.jsonl")
    assert.are.equal('x.jsonl:2: duplicate case id "a" (also on line 1)', err)
    _, err = E.parse_jsonl('{"id": true}\n', "x.jsonl")
    assert.matches("^x.jsonl:1: id must be a non%-empty string or a number", err)
  end)

  it("takes inline lists, copying the cases and deriving ids from positions", function()
    local list = {{id = "x", input = 1}, {input = 2}}
    local cases, derived = E.inline_cases(list, "s")
    assert.are.same({"x", "case-2"}, {cases[1].id, cases[2].id})
    assert.are.same({"case-2"}, derived)
    assert.is_nil(list[2].id)
    local _, err = E.inline_cases({{id = "x"}, "oops"}, "f.lua:3")
    assert.matches("^f.lua:3: dataset%[2%] is a string", err)
  end)

  it("finds the dataset next to the suite file, else from the current folder; says which is missing", function()
    local path, dir = suite_file('return suite "s" { scorers = {function() return true end}, dataset = "cases.jsonl", run = function(c) return c.input end }',
                                 {["cases.jsonl"] = '{"id": "a"}\n{"input": "no id"}\n{"input": "nor this"}\n'})
    local suites = assert(E.load_file(path))
    local notes = {}
    local cases = assert(E.load_cases(suites[1], function(m) notes[#notes + 1] = m end))
    assert.are.equal(3, #cases)
    assert.are.equal(1, #notes) -- said once per file
    assert.are.equal(dir .. '/cases.jsonl: 2 cases without an "id"; ids derived from line numbers: line-2, line-3',
                     notes[1])
    -- from the current folder (the repository root here)
    local s2 = suite_file('return suite "s" { scorers = {function() return true end}, dataset = "examples/evals/capitals.jsonl", run = print }')
    assert.are.equal(10, #assert(E.load_cases(assert(E.load_file(s2))[1], print)))
    local s3 = suite_file('\nreturn suite "s" { scorers = {function() return true end}, dataset = "nope.jsonl", run = print }')
    local _, err = E.load_cases(assert(E.load_file(s3))[1], print)
    assert.are.equal(s3 .. ':2: suite "s": dataset file "nope.jsonl" not found (looked next to ' .. s3
                     .. " and in the current folder)", err)
  end)
end)

describe("the --filter glob", function()
  it("matches whole ids with * and ?, everything else literally", function()
    assert.is_true(E.glob_match("cap*", "capital-france"))
    assert.is_false(E.glob_match("cap*", "the-capital"))
    assert.is_true(E.glob_match("*france*", "capital-france-2"))
    assert.is_true(E.glob_match("?ome", "rome"))
    assert.is_false(E.glob_match("?ome", "frome"))
    assert.is_true(E.glob_match("a.b", "a.b"))
    assert.is_false(E.glob_match("a.b", "axb"))
    assert.is_true(E.glob_match("100%", "100%"))
    assert.is_true(E.glob_match("[x]", "[x]"))
    local cases = {{id = "paris"}, {id = "rome"}, {id = "roma"}}
    local picked = E.filter_cases(cases, "rom?")
    assert.are.same({"rome", "roma"}, {picked[1].id, picked[2].id})
    assert.are.equal(3, #E.filter_cases(cases, nil))
  end)
end)

describe("summaries", function()
  local function res(id, pass, lat, cost, k, extra)
    local r = {case_id = id, pass = pass, latency_ms = lat, cost_usd = cost, repeat_index = k or 1}
    for key, v in pairs(extra or {}) do r[key] = v end
    return r
  end

  it("counts passes, percentiles, live and replayed cost, unknown cost", function()
    local s = E.summarize({res("a", true, 10, 0.001), res("b", false, 20, 0.002, 1, {error = "boom"}),
                           res("c", true, 30, nil), res("d", true, 40, 0.004, 1, {replayed = true})},
                          {threshold = 0.7})
    assert.are.same({4, 3, 1, 1}, {s.cases, s.passed, s.failed, s.errors})
    assert.are.equal(0.75, s.pass_rate)
    assert.are.equal(25, s.p50_ms)
    assert.is_true(math.abs(s.p95_ms - 38.5) < 1e-9) -- numpy: 30 + 0.85 * 10
    assert.is_true(math.abs(s.cost_usd - 0.003) < 1e-12)
    assert.is_true(math.abs(s.replayed_cost_usd - 0.004) < 1e-12)
    assert.are.equal(1, s.unknown_cost)
    assert.are.equal("passed", s.status)
    assert.are.equal("failed", E.summarize({res("a", true, 1, 0)}, {threshold = 0.5, fail_under = 1.01}).status)
    assert.are.equal("failed", E.summarize({res("a", true), res("b", false)}, {threshold = 0.9}).status)
    assert.are.equal("passed", E.summarize({res("a", true), res("b", false)}, {threshold = 0.5}).status)
    assert.are.equal("failed", E.summarize({res("a", true), res("b", false)}, {threshold = 0.5, fail_under = 0.6}).status)
    local unknown = E.summarize({res("a", true, 1, nil)})
    assert.is_nil(unknown.cost_usd)
  end)

  it("counts flakiness per case over repeats", function()
    local s = E.summarize({res("a", true, 1, 0, 1), res("a", false, 1, 0, 2), res("a", true, 1, 0, 3),
                           res("b", true, 1, 0, 1), res("b", true, 1, 0, 2), res("b", true, 1, 0, 3),
                           res("c", false, 1, 0, 1), res("c", false, 1, 0, 2), res("c", false, 1, 0, 3)})
    assert.are.equal(3, s.repeat_count)
    assert.are.same({"a", 2, 3, true}, {s.per_case[1].id, s.per_case[1].passes, s.per_case[1].runs, s.per_case[1].flaky})
    assert.are.same({"b", 3, false}, {s.per_case[2].id, s.per_case[2].passes, s.per_case[2].flaky})
    assert.are.same({"c", 0, false}, {s.per_case[3].id, s.per_case[3].passes, s.per_case[3].flaky})
    assert.are.same({"a"}, {s.flaky[1].id, s.flaky[2]})
    assert.are.same({"c"}, {s.always_failing[1].id})
  end)

  it("diffs against a baseline: newly failing and passing, deltas, like for like", function()
    local base = {res("a", true, 10, 0.001), res("b", true, 10, 0.001), res("c", false, 10, 0.001),
                  res("gone", true, 10, 0.001)}
    local cur = {res("a", true, 20, 0.002), res("b", false, 30, 0.002), res("c", true, 40, 0.002),
                 res("new", false, 50, 0.002)}
    local d = E.diff(cur, base)
    assert.are.same({"b"}, d.newly_failing)
    assert.are.same({"c"}, d.newly_passing)
    assert.are.same({"new"}, d.added)
    assert.are.same({"gone"}, d.removed)
    -- baseline figures over the cases both runs have (a, b, c)
    assert.is_true(math.abs(d.before.pass_rate - 2 / 3) < 1e-12)
    assert.are.equal(0.5, d.after.pass_rate)
    assert.is_true(math.abs(d.pass_rate_delta - (0.5 - 2 / 3)) < 1e-12)
    assert.are.equal(25, d.p50_delta_ms) -- 35 - 10
    assert.is_true(math.abs(d.cost_delta_usd - 0.001) < 1e-12) -- per case run
    -- one pair went each way: the exact McNemar test sees no evidence
    assert.are.same({1, 1, 1, "no evidence of change"}, {d.stats.pass.pass_to_fail, d.stats.pass.fail_to_pass,
                                                         d.stats.pass.p, d.stats.pass.verdict})
    assert.are.same({3, 1, 1}, {d.stats.pairs, d.stats.unpaired_current, d.stats.unpaired_baseline})
    assert.is_false(d.regressed)
    -- a case failing in one of its repeats is failing
    d = E.diff({res("a", true, 1, 0, 1), res("a", false, 1, 0, 2)}, {res("a", true, 1, 0)})
    assert.are.same({"a"}, d.newly_failing)
    -- nothing changed: no regression
    d = E.diff({res("a", true, 1, 0)}, {res("a", true, 1, 0)})
    assert.is_false(d.regressed)
    assert.are.same({}, d.newly_failing)
    local lines = table.concat(E.diff_lines(E.diff(cur, base), 7), "\n")
    assert.matches("vs eval run 7: 3 pairs by case and repeat (unpaired, left out: 1 of this run, 1 of the baseline)",
                   lines, 1, true)
    assert.matches("pass rate 66.7% -> 66.7% (+0.0 pts): 1 pass->fail, 1 fail->pass, McNemar p = 1.000: "
                   .. "no evidence of change", lines, 1, true)
    assert.matches("newly failing (within noise: no evidence of change): b", lines, 1, true)
    assert.matches("newly passing (within noise: no evidence of change): c", lines, 1, true)
    -- eight cases that all went pass -> fail are no noise: 2 * 0.5^8 < 0.05
    local was, now = {}, {}
    for i = 1, 8 do
      was[i], now[i] = res("k" .. i, true, 1, 0), res("k" .. i, false, 1, 0)
    end
    d = E.diff(now, was)
    assert.are.equal("regressed", d.stats.pass.verdict)
    assert.is_true(math.abs(d.stats.pass.p - 2 * 0.5 ^ 8) < 1e-12)
    assert.is_true(d.regressed)
    lines = table.concat(E.diff_lines(d, 7), "\n")
    assert.matches("newly failing: k1, k2", lines, 1, true)
  end)

  it("builds the alert text only for suites that failed or regressed", function()
    local function rep(name, status, diff)
      local results = {res("x<1>", false, 5, 0.001, 1, {reason = 'contains: no "Paris"', trace_id = "abcd1234"})}
      return {suite = {name = name}, run_id = 12, baseline_id = 11, results = results,
              summary = E.summarize(results, {threshold = status == "failed" and 0.9 or 0}), diff = diff,
              repeat_count = 1}
    end
    assert.is_nil(E.alert_text({rep("ok-suite", "passed")}))
    local text = E.alert_text({rep("bad-suite", "failed"), rep("ok-suite", "passed")}, {git_commit = "0123456789abcdef"})
    assert.matches("moonspan eval: 1 suite needs attention", text, 1, true)
    assert.matches("*bad-suite* failed its gate (eval run 12, commit 0123456789ab)", text, 1, true)
    assert.matches('- x<1>: contains: no "Paris" (moonspan show abcd1234)', text, 1, true)
    assert.not_matches("ok-suite", text, 1, true)
    -- one case that newly fails is noise, not a regression
    assert.is_nil(E.alert_text({rep("drift", "passed", E.diff({res("a", false, 1, 0)}, {res("a", true, 1, 0)}))}))
    local was, now = {}, {}
    for i = 1, 8 do
      was[i], now[i] = res("a" .. i, true, 1, 0), res("a" .. i, false, 1, 0)
    end
    local regressed = rep("drift", "passed", E.diff(now, was))
    text = E.alert_text({regressed})
    assert.matches("*drift* regressed against eval run 11", text, 1, true)
    assert.matches("newly failing: a1", text, 1, true)
    assert.matches("McNemar p = 0.008: regressed", text, 1, true)
    local body = cjson.decode(E.alert_body(text))
    assert.are.equal(text, body.text)
    local n = 0
    for _ in pairs(body) do n = n + 1 end
    assert.are.equal(1, n)
  end)
end)

describe("JUnit", function()
  it("escapes what XML cannot carry as is", function()
    assert.are.equal("a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos; \\x07", junit.escape("a <b> & \"c\" 'd' \7"))
  end)

  it("is well formed and parses back with the right counts and text", function()
    local xml = junit.xml{{name = 's<1>&"', time_s = 1.5, properties = {{"eval_run", "3"}}, cases = {
      {name = "ok", time_s = 0.01},
      {name = "bad]]>", time_s = 0.02, failure = {message = 'expected "<Paris>" & more', type = "score",
                                                  text = "line1\nline2 <tag>"}},
    }}}
    local root = EH.parse_xml(xml)
    assert.are.equal("testsuites", root.name)
    assert.are.same({"2", "1"}, {root.attrs.tests, root.attrs.failures})
    local suite = EH.children(root, "testsuite")[1]
    assert.are.same({'s<1>&"', "2", "1", "1.500"}, {suite.attrs.name, suite.attrs.tests, suite.attrs.failures,
                                                     suite.attrs.time})
    local cases = EH.children(suite, "testcase")
    assert.are.same({"ok", "bad]]>"}, {cases[1].attrs.name, cases[2].attrs.name})
    assert.are.equal('s<1>&"', cases[2].attrs.classname)
    local failure = EH.children(cases[2], "failure")[1]
    assert.are.equal('expected "<Paris>" & more', failure.attrs.message)
    assert.are.equal("line1\nline2 <tag>", failure.text)
    assert.are.equal(0, #EH.children(cases[1], "failure"))
  end)

  it("writes through a temporary file and leaves no partial file on failure", function()
    local dir = H.tmpdir("junit")
    assert.is_true(junit.write(dir .. "/r.xml", "<x/>\n"))
    assert.are.equal("<x/>\n", H.read(dir .. "/r.xml"))
    local ok, err = junit.write(dir .. "/missing/r.xml", "<x/>")
    assert.is_nil(ok)
    assert.matches("cannot write " .. dir .. "/missing/r.xml", err, 1, true)
    local ls = H.sh("ls -A " .. H.q(dir))
    assert.are.equal("r.xml\n", ls.out)
  end)
end)

describe("moonspan eval (main, in process)", function()
  it("runs the example suite: failures with reasons and trace ids, summary, exit 1", function()
    local r = EH.main{files = {"examples/evals/qa_suite.lua"}}
    assert.are.equal(1, r.code)
    local rows = results_of(r)
    assert.are.equal(10, #rows)
    local run = r.store.runs[1]
    assert.are.equal("capital-cities", run.suite)
    assert.are.equal(0.9, run.begin.threshold)
    assert.are.same({10, 8, 0.8, "failed"}, {run.finish.cases, run.finish.passed, run.finish.pass_rate,
                                              run.finish.status})
    local by = {}
    for _, row in ipairs(rows) do by[row.case_id] = row end
    assert.is_false(by.australia.pass)
    assert.matches("^%x+$", by.australia.trace_id)
    assert.are.equal(32, #by.australia.trace_id)
    assert.are.equal("The capital of France is Paris.", by.france.output)
    assert.are.equal("Paris", by.france.expected)
    assert.are.equal(3, #by.france.scores)
    assert.are.same({"contains", 1, true}, {by.france.scores[1].name, by.france.scores[1].score,
                                              by.france.scores[1].pass})
    assert.is_true(by.france.latency_ms >= 20)
    assert.matches('australia%s+contains: output does not contain "Canberra"', r.out)
    assert.matches(by.australia.trace_id, r.out, 1, true)
    assert.matches("capital-cities: FAILED, pass rate 80.0% (8/10) < threshold 90.0%", r.out, 1, true)
    assert.matches("p50 %d+%.%d ms, p95 %d+%.%d ms", r.out)
    -- not a terminal: one plain progress line per case on stderr
    local n = 0
    for _ in r.err:gmatch("%[%d+/10%] [%a]+ capital%-cities ") do n = n + 1 end
    assert.are.equal(10, n)
  end)

  it("shows a single updating progress line on a terminal", function()
    local r = EH.main{files = {"examples/evals/qa_suite.lua"}, tty = true, filter = "f*"}
    assert.matches("\r\27[K", r.err, 1, true)
    assert.matches("1/1", r.err, 1, true)
    assert.matches("ETA", r.err, 1, true)
    assert.not_matches("\n.*%[%d+/", r.err)
  end)

  it("exits 2 naming file and line for a dataset line that is not JSON", function()
    local path, dir = suite_file('return suite "s" { scorers = {function() return true end}, dataset = "c.jsonl", run = function(c) return c.input end }',
                                 {["c.jsonl"] = '{"id": "a"}\n{"id": "b"}\n{"id": "c"}\n{"id": "d"}\n{"id": "e"}\n'
                                               .. '{"id": "f"}\n{"id": oops}\n'})
    local r = EH.main{files = {path}}
    assert.are.equal(2, r.code)
    assert.matches("moonspan eval: " .. dir .. "/c.jsonl:7: not JSON (", r.err, 1, true)
    assert.are.equal(0, #r.store.runs) -- nothing ran
  end)

  it("exits 2 for a suite file that returns no suite", function()
    local path = suite_file('suite "s" { scorers = {function() return true end}, dataset = {{id = "a"}}, run = print }')
    local r = EH.main{files = {path}}
    assert.are.equal(2, r.code)
    assert.matches(path .. ': returned nil, expected suite "name" {', r.err, 1, true)
  end)

  it("derives ids from line numbers and says so once per file", function()
    local path = suite_file('return suite "s" { scorers = {function() return true end}, dataset = "c.jsonl", run = function(c) return c.input end }',
                            {["c.jsonl"] = '{"input": "a"}\n{"input": "b"}\n{"id": "named", "input": "c"}\n'})
    local r = EH.main{files = {path}}
    assert.are.equal(0, r.code)
    local n = select(2, r.err:gsub("without an \"id\"", ""))
    assert.are.equal(1, n)
    assert.matches('2 cases without an "id"; ids derived from line numbers: line-1, line-2', r.err, 1, true)
    local ids = {}
    for _, row in ipairs(results_of(r)) do ids[#ids + 1] = row.case_id end
    assert.are.same({"line-1", "line-2", "named"}, ids)
  end)

  it("fails the case whose scorer raises, with the error as its reason, and goes on", function()
    local path = suite_file([[
      return suite "s" {
        dataset = {{id = "a", input = 1}, {id = "b", input = 2}, {id = "c", input = 3}},
        run = function(c)
          if c.input == 3 then error("pipeline broke") end
          return c.input
        end,
        scorers = { function(out) if out == 2 then error("scorer bug") end return true end },
        threshold = 0.3,
      }]])
    local r = EH.main{files = {path}}
    assert.are.equal(0, r.code) -- 1/3 >= 0.3
    local rows = results_of(r)
    assert.is_true(rows[1].pass)
    assert.is_false(rows[2].pass)
    -- the scorer is named where it is defined
    assert.matches("suite.lua:7 raised: .*scorer bug", rows[2].error)
    assert.matches("suite.lua:7 raised: .*scorer bug", rows[2].scores[1].reason)
    assert.is_false(rows[3].pass)
    assert.matches("pipeline broke", rows[3].error)
    assert.are.same({}, rows[3].scores)
    assert.matches("%x+", rows[3].trace_id)
    assert.matches("b%s+suite.lua:7 raised: ", r.out)
    assert.matches("c%s+.*pipeline broke", r.out)
  end)

  it("runs the scorers inside the case's trace: llm_judge's call counts in its tokens", function()
    local function run_with(scorers_src)
      local path = suite_file([[
        return suite "j" {
          dataset = {{id = "a", input = "What is 2+2?"}},
          run = function(c) return llm.call{model = "mock", messages = {{role = "user", content = c.input}},
                                            mock = {reply = "4"}}.text end,
          scorers = ]] .. scorers_src .. [[,
        }]])
      return EH.main{files = {path}}
    end
    local plain = run_with("{ function() return true end }")
    local judged = run_with([[{ llm_judge{model = "mock", rubric = "Is the sum right?",
                                            mock = {reply = '{"score": 0.9, "reason": "correct"}'}} }]])
    local p, j = results_of(plain)[1], results_of(judged)[1]
    assert.are.equal(0, judged.code)
    assert.are.same({"llm_judge", 0.9, "correct"}, {j.scores[1].name, j.scores[1].score, j.scores[1].reason})
    if p.input_tokens then -- ctx:totals() is there
      assert.is_true(j.input_tokens > p.input_tokens, "the judge's tokens count in the case")
      assert.is_true(j.cost_usd > p.cost_usd, "the judge's cost counts in the case")
    end
  end)

  it("repeats cases and reports per-case flakiness", function()
    local path = suite_file([[
      local n = {}
      return suite "flaky" {
        dataset = {{id = "steady"}, {id = "coin"}, {id = "broken"}},
        run = function(c)
          n[c.id] = (n[c.id] or 0) + 1
          if c.id == "steady" then return "ok" end
          if c.id == "coin" then return n.coin % 2 == 1 and "ok" or "no" end
          return "no"
        end,
        scorers = { exact("ok") },
        threshold = 0.5,
      }]])
    local r = EH.main{files = {path}, repeat_count = 3}
    local rows = results_of(r)
    assert.are.equal(9, #rows)
    local k = {}
    for _, row in ipairs(rows) do k[#k + 1] = row.case_id .. "#" .. row.repeat_index end
    assert.are.same({"steady#1", "steady#2", "steady#3", "coin#1", "coin#2", "coin#3", "broken#1", "broken#2",
                     "broken#3"}, k)
    assert.are.equal(0, r.code) -- 5/9 >= 0.5
    assert.matches("repeat 3: 1 flaky, 1 always failing, 1 stable passing", r.out, 1, true)
    assert.matches("coin 2/3 flaky", r.out, 1, true)
    assert.matches("broken 0/3", r.out, 1, true)
    assert.matches("coin#2%s+exact:", r.out)
  end)

  it("runs only the cases --filter picks, and exits 2 when it picks none", function()
    local r = EH.main{files = {"examples/evals/qa_suite.lua"}, filter = "*a"}
    local ids = {}
    for _, row in ipairs(results_of(r)) do ids[#ids + 1] = row.case_id end
    table.sort(ids)
    assert.are.same({"australia", "canada", "kenya", "mongolia"}, ids)
    r = EH.main{files = {"examples/evals/qa_suite.lua"}, filter = "zz*"}
    assert.are.equal(2, r.code)
    assert.matches("--filter zz* matches no case id", r.err, 1, true)
  end)

  it("really overlaps cases: 10 cases of 100 ms at concurrency 10 take about one case's time", function()
    local path = suite_file([[
      local in_flight, max_in_flight = 0, 0
      return suite "slow" { scorers = {function() return true end},
        dataset = {{id = "1"}, {id = "2"}, {id = "3"}, {id = "4"}, {id = "5"},
                   {id = "6"}, {id = "7"}, {id = "8"}, {id = "9"}, {id = "10"}},
        run = function(c)
          in_flight = in_flight + 1
          if in_flight > max_in_flight then max_in_flight = in_flight end
          local text = llm.call{model = "mock", messages = {{role = "user", content = c.id}},
                                mock = {latency_ms = 100}}.text
          in_flight = in_flight - 1
          _G.eval_spec_max_in_flight = max_in_flight
          return text
        end,
      }]])
    local t0 = moonspan.now_ms()
    local r = EH.main{files = {path}, concurrency = 10}
    local wall = moonspan.now_ms() - t0
    assert.are.equal(0, r.code)
    assert.is_true(wall < 500, "10 x 100 ms cases at concurrency 10 took " .. wall .. " ms")
    assert.are.equal(10, _G.eval_spec_max_in_flight)
    for _, row in ipairs(results_of(r)) do assert.is_true(row.latency_ms >= 100) end
    -- and the pool is bounded by --concurrency
    r = EH.main{files = {path}, concurrency = 3}
    assert.are.equal(3, _G.eval_spec_max_in_flight)
  end)

  it("compares with --baseline and prints what newly fails", function()
    local path = suite_file([[
      return suite "drift" {
        dataset = {{id = "a", expected = "A"}, {id = "b", expected = "B"}, {id = "c", expected = "C"}},
        run = function(c) return (_G.eval_spec_answers or {})[c.id] or c.expected end,
        scorers = { exact(case_field "expected") },
        threshold = 0.5,
      }]])
    local store = EH.fake_store()
    _G.eval_spec_answers = {c = "wrong"}
    local first = EH.main({files = {path}}, store)
    assert.are.equal(0, first.code)
    _G.eval_spec_answers = {b = "wrong"}
    local r = EH.main({files = {path}, baseline = "last"}, store)
    _G.eval_spec_answers = nil
    assert.are.equal(0, r.code)
    assert.matches("vs eval run 1: 3 pairs by case and repeat", r.out, 1, true)
    assert.matches("pass rate 66.7% -> 66.7% (+0.0 pts): 1 pass->fail, 1 fail->pass", r.out, 1, true)
    assert.matches("newly failing (within noise: no evidence of change): b", r.out, 1, true)
    assert.matches("newly passing (within noise: no evidence of change): c", r.out, 1, true)
    -- an explicit run id that does not exist is bad input, found before anything runs
    local n = #store.runs
    r = EH.main({files = {path}, baseline = "99"}, store)
    assert.are.equal(2, r.code)
    assert.matches('--baseline 99: suite "drift": no eval run 99', r.err, 1, true)
    assert.are.equal(n, #store.runs)
    -- "last" with no earlier run is a note, not an error
    r = EH.main({files = {path}, baseline = "last"}, EH.fake_store())
    assert.are.equal(0, r.code)
    assert.matches("no earlier run to compare with", r.err, 1, true)
  end)

  it("gates on --fail-under as well as the threshold", function()
    local path = suite_file([[return suite "g" { dataset = {{id = "a"}, {id = "b"}},
      run = function(c) return c.id end, scorers = { exact("a") }, threshold = 0.5 }]])
    assert.are.equal(0, EH.main{files = {path}}.code)
    local r = EH.main{files = {path}, fail_under = 0.75}
    assert.are.equal(1, r.code)
    assert.matches("pass rate 50.0% (1/2) < --fail-under 75.0%", r.out, 1, true)
    assert.are.equal("failed", r.store.runs[1].finish.status)
  end)

  it("passes --record and --replay through to llm and the store", function()
    local path = suite_file([[return suite "rr" { scorers = {function() return true end}, dataset = {{id = "a"}},
      run = function() _G.eval_spec_seen = {llm.record_run, llm.replay_run} return "x" end }]])
    local store = EH.fake_store()
    local r = EH.main({files = {path}, record = true}, store)
    assert.are.equal(0, r.code)
    assert.are.same({1, nil}, _G.eval_spec_seen)
    assert.is_true(store.runs[1].begin.record)
    assert.is_nil(llm.record_run) -- put back afterwards
    r = EH.main({files = {path}, replay = "last"}, store)
    assert.are.equal(0, r.code)
    assert.are.same({nil, 1}, _G.eval_spec_seen)
    assert.are.equal(1, store.runs[2].begin.replay_of)
    assert.is_nil(llm.replay_run)
    r = EH.main({files = {path}, replay = "last"}, EH.fake_store())
    assert.are.equal(2, r.code)
    assert.matches('--replay last: suite "rr": no earlier eval run', r.err, 1, true)
  end)

  it("writes a JUnit report that parses back, with #k names when repeated", function()
    local dir = H.tmpdir("junit-main")
    local path = suite_file([[return suite "j&<s>" { dataset = {{id = "ok"}, {id = 'q"<&>'}},
      run = function(c) return c.id end, scorers = { exact("ok") }, threshold = 0 }]])
    local r = EH.main{files = {path, "examples/evals/qa_suite.lua"}, junit = dir .. "/report.xml", repeat_count = 2}
    assert.are.equal(1, r.code)
    local root = EH.parse_xml(assert(H.read(dir .. "/report.xml")))
    assert.are.same({"24", "6"}, {root.attrs.tests, root.attrs.failures})
    local suites = EH.children(root, "testsuite")
    assert.are.same({"j&<s>", "capital-cities"}, {suites[1].attrs.name, suites[2].attrs.name})
    local cases = EH.children(suites[1], "testcase")
    assert.are.same({"ok#1", "ok#2", 'q"<&>#1', 'q"<&>#2'},
                    {cases[1].attrs.name, cases[2].attrs.name, cases[3].attrs.name, cases[4].attrs.name})
    assert.are.equal("j&<s>", cases[3].attrs.classname)
    local failure = EH.children(cases[3], "failure")[1]
    assert.are.equal('exact: expected "ok", got "q"<&>"', failure.attrs.message)
    assert.matches("moonspan show %x+", failure.text)
    assert.matches("^%d+%.%d%d%d$", cases[1].attrs.time)
    assert.are.equal("report.xml\n", H.sh("ls -A " .. H.q(dir)).out)
    -- an unwritable path: said, exit 2, nothing left behind
    r = EH.main{files = {path}, junit = dir .. "/no/such/dir/r.xml"}
    assert.are.equal(2, r.code)
    assert.matches("--junit: cannot write", r.err, 1, true)
  end)
end)

describe("the alert webhook", function()
  local fake = dofile(here .. "fake_server.lua").start(H)
  -- tests/fake_llm records the last request to a provider path in /last,
  -- so the webhook points at one of those
  local hook = fake.url .. "/v1/chat/completions"

  it("POSTs {text} as JSON", function()
    fake.reset()
    assert.is_true(E.post_alert(hook, "suite x failed"))
    local last = fake.last()
    assert.are.equal("POST", last.method)
    assert.are.equal("application/json", last.headers["content-type"])
    assert.are.same({text = "suite x failed"}, cjson.decode(last.body))
  end)

  it("retries 5xx with backoff, up to 3 attempts", function()
    fake.reset()
    local ok = E.post_alert(hook, "again", {backoff_ms = 1, headers = {["x-fake-fault"] = "500",
      ["x-fake-fault-times"] = "2", ["x-fake-key"] = "hook" .. math.random(1e9)}})
    assert.is_true(ok)
    assert.are.equal(3, fake.stats().requests)
    fake.reset()
    local err
    ok, err = E.post_alert(hook, "never", {backoff_ms = 1, headers = {["x-fake-fault"] = "500"}})
    assert.is_nil(ok)
    assert.matches("HTTP 500 .* %(after 3 attempts%)", err)
    assert.are.equal(3, fake.stats().requests)
    fake.reset()
    ok, err = E.post_alert(hook, "bad", {backoff_ms = 1, headers = {["x-fake-fault"] = "400"}})
    assert.matches("HTTP 400 .*not retried", err)
    assert.are.equal(1, fake.stats().requests)
  end)

  it("is sent by main when a suite fails; a dead webhook is reported and changes nothing", function()
    fake.reset()
    local r = EH.main{files = {"examples/evals/qa_suite.lua"}, alert_webhook = hook}
    assert.are.equal(1, r.code)
    assert.matches("alert sent", r.err, 1, true)
    local text = cjson.decode(fake.last().body).text
    assert.matches("*capital-cities* failed its gate", text, 1, true)
    assert.matches("- australia: contains: output does not contain", text, 1, true)
    -- nothing listens on port 9 of loopback: every attempt fails, the run stands
    r = EH.main{files = {"examples/evals/qa_suite.lua"}, alert_webhook = "http://127.0.0.1:9/hook",
                alert_backoff_ms = 1}
    assert.are.equal(1, r.code)
    assert.matches("the alert could not be sent", r.err, 1, true)
    assert.matches("after 3 attempts", r.err, 1, true)
    -- a passing suite sends nothing
    fake.reset()
    r = EH.main{files = {"examples/evals/qa_suite.lua"}, alert_webhook = hook, filter = "france"}
    assert.are.equal(0, r.code)
    assert.are.equal(0, fake.stats().requests)
  end)
end)
