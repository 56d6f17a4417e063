-- Eval baselines with statistics, end to end: the real binary, a real
-- store. Suites draw their outcomes from a seeded generator (seeded per
-- case, repeat and run), so each run's pass pattern is fixed; the
-- expected verdicts are worked out here from the stored results with a
-- binomial tail of our own, never copied from the output.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")

local function eval(args, db, env)
  local all = {"eval"}
  for _, a in ipairs(args) do all[#all + 1] = a end
  return H.moonspan(all, {db = db, env = env})
end

-- A suite whose case passes with probability $PASS_P, drawn from a
-- generator seeded by ($SEED, case, repeat): a fixed pattern per run.
local COIN_SUITE = [[
local p = tonumber(os.getenv("PASS_P"))
local seed = tonumber(os.getenv("SEED"))
local cases = {}
for i = 1, tonumber(os.getenv("CASES") or "15") do cases[i] = {id = string.format("c%02d", i)} end
return suite "coin" {
  dataset = cases,
  run = function(case, ctx)
    math.randomseed(seed, tonumber(case.id:sub(2)) * 1000 + ctx.repeat_index)
    return math.random() < p and "yes" or "no"
  end,
  scorers = { exact("yes") },
  threshold = 0,
}]]

-- Exact two-sided McNemar p worked out here: 2 * P(X <= min(b, c)),
-- X ~ Binomial(b + c, 1/2), capped at 1.
local function mcnemar_p(b, c)
  local n, k = b + c, math.min(b, c)
  if n == 0 then return 1 end
  local sum, coef = 0, 1
  for i = 0, k do
    if i > 0 then coef = coef * (n - i + 1) / i end
    sum = sum + coef * 0.5 ^ n
  end
  return math.min(1, 2 * sum)
end

-- pass -> fail and fail -> pass pairs between two stored runs, paired by
-- (case, repeat).
local function discordant(db, before, after)
  local rows = H.query(db, string.format(
    "SELECT a.pass AS a, b.pass AS b FROM eval_results a JOIN eval_results b"
    .. " ON a.case_id = b.case_id AND a.repeat_index = b.repeat_index"
    .. " WHERE a.eval_run = %d AND b.eval_run = %d", before, after))
  local pf, fp = 0, 0
  for _, r in ipairs(rows) do
    if r.a == 1 and r.b == 0 then pf = pf + 1 end
    if r.a == 0 and r.b == 1 then fp = fp + 1 end
  end
  return pf, fp, #rows
end

describe("eval --baseline with statistics", function()
  it("calls the issue's example (pass probability 0.80 -> 0.75, --repeat 3) no evidence of change", function()
    local dir = H.tmpdir("noise")
    local db, suite = dir .. "/x.db", dir .. "/coin.lua"
    H.write(suite, COIN_SUITE)
    local r1 = eval({"--repeat", "3", suite}, db, {PASS_P = "0.80", SEED = "11"})
    assert.are.equal(0, r1.code, r1.err)
    local r = eval({"--repeat", "3", "--baseline", "last", "--fail-if-regressed", suite}, db,
                   {PASS_P = "0.75", SEED = "12"})
    assert.are.equal(0, r.code, r.out .. r.err)
    local pf, fp, n = discordant(db, 1, 2)
    assert.are.equal(45, n)
    local p = mcnemar_p(pf, fp)
    assert.is_true(p >= 0.05, "the seeds were meant to give noise, p = " .. p)
    assert.matches(string.format("%d pass->fail, %d fail->pass, McNemar p = %.3f: no evidence of change", pf, fp, p),
                   r.out, 1, true)
    assert.matches("45 pairs by case and repeat", r.out, 1, true)
    if pf > 0 then assert.matches("newly failing (within noise: no evidence of change)", r.out, 1, true) end
    assert.matches("--fail-if-regressed=pass,scores: passed, no evidence of change for the worse", r.out, 1, true)
    -- cases that got worse with no span changed share one line, not a line each
    -- (a case whose trace changed beyond noise, as a loaded machine can make
    -- one, still gets a line of its own)
    if pf > 0 then assert.matches("\n%s*worse[:,] [^\n]*#", r.out) end
    assert.not_matches("worse: [^\n]*no span changed", r.out)
    -- the binary scorer says the same; latency is left alone: a whole run's
    -- drift of a few microseconds may well read as a real change of it
    local score_line = r.out:match("score exact: [^\n]*")
    assert.matches(string.format("%d worse, %d better, McNemar p = %.3f: no evidence of change", pf, fp, p),
                   score_line, 1, true)
    -- the smallest change 45 pairs can show: 6 discordant pairs all one way
    -- (2 * 0.5^6 < 0.05 <= 2 * 0.5^5), 6/45 = 13.3 points
    assert.is_true(2 * 0.5 ^ 6 < 0.05 and 2 * 0.5 ^ 5 >= 0.05)
    assert.matches("smallest change this suite can detect (45 pairs, alpha 0.05, power 80%): pass rate 13.3 pts",
                   r.out, 1, true)
  end)

  it("flags a real regression (0.9 -> 0.3 over 40 pairs) and fails --fail-if-regressed", function()
    local dir = H.tmpdir("regress")
    local db, suite = dir .. "/x.db", dir .. "/coin.lua"
    H.write(suite, COIN_SUITE)
    local env = {PASS_P = "0.9", SEED = "3", CASES = "40"}
    assert.are.equal(0, eval({suite}, db, env).code)
    env.PASS_P, env.SEED = "0.3", "4"
    -- without the flag the outcome is the threshold's (0 here)
    local plain = eval({"--baseline", "last", suite}, db, env)
    assert.are.equal(0, plain.code, plain.err)
    local pf, fp = discordant(db, 1, 2)
    local p = mcnemar_p(pf, fp)
    assert.is_true(p < 0.05 and pf > fp)
    local verdict = string.format("%d pass->fail, %d fail->pass, McNemar p = %s: regressed", pf, fp,
                                  p < 0.001 and "< 0.001" or string.format("%.3f", p))
    assert.matches(verdict, plain.out, 1, true)
    local r = eval({"--baseline", "1", "--fail-if-regressed", suite}, db, env)
    assert.are.equal(1, r.code, r.out .. r.err)
    assert.matches("--fail-if-regressed=pass,scores: FAILED, regressed against eval run 1: pass, scores", r.out, 1,
                   true)
    -- the binary scorer is tested like the pass rate
    assert.matches("score exact: mean ", r.out, 1, true)
    -- the verdicts reach the JUnit report's properties
    r = eval({"--baseline", "1", "--junit", dir .. "/j.xml", suite}, db, env)
    local xml = H.read(dir .. "/j.xml")
    assert.matches('<property name="pass_rate_verdict" value="regressed"', xml, 1, true)
    assert.matches('<property name="baseline_run" value="1"', xml, 1, true)
    assert.matches('<property name="regressed" value="true"', xml, 1, true)
  end)

  it("stores the comparison it printed in the run's config (config.comparison, read by `moonspan ui`)", function()
    local dir = H.tmpdir("stored")
    local db, suite = dir .. "/x.db", dir .. "/coin.lua"
    H.write(suite, COIN_SUITE)
    local env = {PASS_P = "0.9", SEED = "3", CASES = "40"}
    assert.are.equal(0, eval({suite}, db, env).code)
    -- a run without a baseline stores no comparison
    local cfg1 = H.json(H.scalar(db, "SELECT config FROM eval_runs WHERE id = 1"))
    assert.is_nil(cfg1.comparison)
    env.PASS_P, env.SEED = "0.3", "4"
    local r = eval({"--baseline", "last", suite}, db, env)
    assert.are.equal(0, r.code, r.err)
    local c = H.json(H.scalar(db, "SELECT config FROM eval_runs WHERE id = 2")).comparison
    assert.is_table(c)
    assert.are.equal(1, c.baseline_run)
    assert.are.equal(40, c.pairs)
    local pf, fp = discordant(db, 1, 2)
    assert.are.equal(pf, c.pass.pass_to_fail)
    assert.are.equal(fp, c.pass.fail_to_pass)
    H.close_to(mcnemar_p(pf, fp), c.pass.p, "stored McNemar p", 1e-12)
    assert.are.equal("regressed", c.pass.verdict)
    -- the numbers are the ones printed: the stored latency interval, formatted
    -- as the summary formats it, is in the output
    assert.are.equal("exact", c.scorers[1].name)
    assert.is_true(c.scorers[1].binary)
    assert.are.equal(c.pass.verdict, c.scorers[1].verdict)
    assert.matches(string.format("latency per case: %s%s [", c.latency.est < 0 and "-" or "+",
                                 moonspan.fmt_ms(math.abs(c.latency.est))), r.out, 1, true)
    -- the pairs that got worse, each with its case id and why
    assert.are.equal(pf, #c.worse)
    assert.are.equal("pass -> fail", c.worse[1].why)
    assert.matches("^c%d%d$", c.worse[1].case_id)
    -- the earlier keys of the config are still there
    assert.are.equal("last", H.json(H.scalar(db, "SELECT config FROM eval_runs WHERE id = 2")).baseline)
  end)

  it("counts latency only when asked: --fail-if-regressed=latency", function()
    local dir = H.tmpdir("latency")
    local db, suite = dir .. "/x.db", dir .. "/s.lua"
    H.write(suite, [[
      local wait = tonumber(os.getenv("WAIT_MS"))
      local cases = {}
      for i = 1, 12 do cases[i] = {id = "w" .. i} end
      return suite "waits" {
        dataset = cases,
        run = function(case) if wait > 0 then moonspan.sleep_ms(wait) end return "ok" end,
        scorers = { exact("ok") },
        threshold = 0,
      }]])
    assert.are.equal(0, eval({"--concurrency", "1", suite}, db, {WAIT_MS = "0"}).code)
    -- 5 ms more in every case: the interval of the paired differences excludes 0
    local r = eval({"--concurrency", "1", "--baseline", "1", "--fail-if-regressed", suite}, db, {WAIT_MS = "5"})
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.matches("latency per case: %+[%d.]+ ms %[%+[%d.]+ ms, %+[%d.]+ ms%] %(95%% CI%): regressed", r.out)
    assert.matches("--fail-if-regressed=pass,scores: passed", r.out, 1, true)
    r = eval({"--concurrency", "1", "--baseline", "1", "--fail-if-regressed=pass,latency", suite}, db,
             {WAIT_MS = "5"})
    assert.are.equal(1, r.code, r.out .. r.err)
    assert.matches("--fail-if-regressed=pass,latency: FAILED, regressed against eval run 1: latency", r.out, 1, true)
  end)

  it("shows every scorer's mean, with or without a baseline, and tests a numeric score by its interval", function()
    local dir = H.tmpdir("means")
    local db, suite = dir .. "/x.db", dir .. "/s.lua"
    H.write(suite, [[
      local shift = tonumber(os.getenv("SHIFT"))
      local cases = {}
      for i = 1, 30 do cases[i] = {id = "k" .. i} end
      return suite "graded" {
        dataset = cases,
        run = function(case) return case.id end,
        scorers = {
          contains("k"),
          function(out, case)
            local i = tonumber(case.id:sub(2))
            return math.max(0, math.min(1, 0.5 + shift + ((i * 7) % 10 - 4.5) / 50))
          end,
        },
        threshold = 0,
      }]])
    local r1 = eval({suite}, db, {SHIFT = "0.3"})
    assert.are.equal(0, r1.code, r1.err)
    -- the means, worked out from what was stored
    local rows = H.query(db, "SELECT scores FROM eval_results WHERE eval_run = 1")
    local sum, name = 0, nil
    for _, row in ipairs(rows) do
      local sc = H.json(row.scores)[2]
      sum, name = sum + sc.score, sc.name
    end
    assert.matches(string.format("scorer means: contains 1.000, %s %.3f", name, sum / #rows), r1.out, 1, true)
    -- every case 0.2 lower: the interval is [-0.2, -0.2]
    local r = eval({"--baseline", "last", "--fail-if-regressed=scores", suite}, db, {SHIFT = "0.1"})
    assert.are.equal(1, r.code, r.out .. r.err)
    assert.matches(string.format("score %s: mean 0.800 -> 0.600, difference -0.200 [-0.200, -0.200] (95%% CI): "
                                 .. "regressed", name), r.out, 1, true)
    assert.matches("score contains: mean 1.000 -> 1.000, 0 worse, 0 better, McNemar p = 1.000: no evidence of change",
                   r.out, 1, true)
    -- and the same run is no change against itself
    r = eval({"--baseline", "last", "--fail-if-regressed=scores", suite}, db, {SHIFT = "0.1"})
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.matches("difference +0.000 [+0.000, +0.000] (95% CI): no evidence of change", r.out, 1, true)
  end)

  it("names the first span that changed for a case that got worse", function()
    local dir = H.tmpdir("which")
    local db, suite = dir .. "/x.db", dir .. "/s.lua"
    H.write(suite, [[
      local long = os.getenv("LONG") == "1"
      return suite "chatty" {
        dataset = {{id = "a"}, {id = "b"}},
        run = function(case)
          span("search", {q = case.id}, function() end)
          return span("generate", function()
            local reply = (long and case.id == "a") and "a b c d e f g h i j" or "short"
            return llm.call{model = "mock", messages = {{role = "user", content = "hi"}}, mock = {reply = reply}}.text
          end)
        end,
        scorers = { exact("short") },
        threshold = 0,
      }]])
    assert.are.equal(0, eval({suite}, db, {}).code)
    local r = eval({"--baseline", "last", suite}, db, {LONG = "1"})
    assert.are.equal(0, r.code, r.err)
    assert.matches("worse: a (pass -> fail): first change: generate/chat mock: output_tokens 1 -> 10", r.out,
                   1, true)
    assert.not_matches("worse: b", r.out, 1, true)
    -- two pairs: the bootstrap interval is shown, with no verdict
    assert.matches("latency per case: [^\n]*: too few pairs for a verdict %(fewer than 5%)", r.out)
  end)

  it("refuses --fail-if-regressed without a baseline, and an unknown metric", function()
    local dir = H.tmpdir("usage")
    local suite = dir .. "/coin.lua"
    H.write(suite, COIN_SUITE)
    local r = eval({"--fail-if-regressed", suite}, dir .. "/x.db", {PASS_P = "1", SEED = "1"})
    assert.are.equal(2, r.code)
    assert.matches("--fail-if-regressed needs a run to compare with: add --baseline last", r.err, 1, true)
    r = eval({"--fail-if-regressed=speed", "--baseline", "last", suite}, dir .. "/x.db", {PASS_P = "1", SEED = "1"})
    assert.are.equal(2, r.code)
    assert.matches("unknown metric 'speed'; use a comma list of pass, scores, latency, cost", r.err, 1, true)
    assert.are.equal("", r.out)
  end)
end)

describe("moonspan evals flaky", function()
  local dir, db
  setup(function()
    dir = H.tmpdir("flaky")
    db = dir .. "/x.db"
    local suite = dir .. "/flk.lua"
    H.write(suite, [[
      local flip = os.getenv("FLIP") == "1"
      return suite "flk" {
        dataset = {{id = "stable"}, {id = "coin"}, {id = "bad"}, {id = "late"}},
        run = function(case, ctx)
          if case.id == "stable" then return "ok" end
          if case.id == "bad" then return "no" end
          if case.id == "late" then return (flip and ctx.repeat_index == 2) and "no" or "ok" end
          return (ctx.repeat_index % 2 == 0) and "ok" or "no"
        end,
        scorers = {exact("ok")}, threshold = 0,
      }]])
    for _, flip in ipairs{"0", "0", "1"} do
      assert.are.equal(0, eval({"--repeat", "3", suite}, db, {FLIP = flip}).code)
    end
  end)

  local wilson = H.wilson -- Wilson's score interval, worked out in helpers.lua

  it("counts each case over the runs, with Wilson intervals, most flaky first", function()
    local r = H.moonspan({"evals", "flaky", "flk", "--json"}, {db = db})
    assert.are.equal(0, r.code, r.err)
    local j = H.json(r.out)
    assert.are.same({1, 2, 3}, j.runs)
    local want = { -- id, attempts, passes, flaky, newly
      {"coin", 9, 3, true, false}, {"late", 9, 8, true, true}, {"bad", 9, 0, false, false},
      {"stable", 9, 9, false, false}}
    for i, w in ipairs(want) do
      local c = j.cases[i]
      assert.are.same(w, {c.case_id, c.attempts, c.passes, c.flaky, c.newly_flaky})
      local lo, hi = wilson(w[2] - w[3], w[2])
      assert.is_true(math.abs(c.failure_rate_lo - lo) < 1e-9, c.case_id .. " lo " .. c.failure_rate_lo .. " vs " .. lo)
      assert.is_true(math.abs(c.failure_rate_hi - hi) < 1e-9, c.case_id .. " hi " .. c.failure_rate_hi .. " vs " .. hi)
    end
    assert.are.same({2, 1, 1, 1}, {j.flaky, j.newly_flaky, j.always_failing, j.always_passing})
    local t = H.moonspan({"evals", "flaky", "flk"}, {db = db})
    assert.are.equal(0, t.code, t.err)
    local lo, hi = wilson(1, 9)
    assert.matches(string.format("late%%s+9%%s+8%%s+11.1%%%%%%s+%%[%.1f%%%%, %.1f%%%%%%]%%s+flaky %%(new%%)", lo * 100,
                                 hi * 100), t.out)
    assert.matches("2 flaky (1 new), 1 always failing, 1 always passing", t.out, 1, true)
  end)

  it("windows the runs with --runs", function()
    local j = H.json(H.moonspan({"evals", "flaky", "flk", "--json", "--runs", "1"}, {db = db}).out)
    assert.are.same({3}, j.runs)
    assert.are.equal(3, j.cases[1].attempts)
  end)

  it("names the known suites for an unknown one, exit 2, nothing on stdout", function()
    local r = H.moonspan({"evals", "flaky", "nope"}, {db = db})
    assert.are.equal(2, r.code)
    assert.are.equal("", r.out)
    assert.matches('no eval run of suite "nope" in this store; the suites it has: flk', r.err, 1, true)
    r = H.moonspan({"evals", "flaky", "x"}, {db = dir .. "/empty.db"})
    assert.are.equal(2, r.code)
    r = H.moonspan({"evals", "wobbly", "flk"}, {db = db})
    assert.are.equal(2, r.code)
    assert.matches("unknown subcommand 'wobbly'", r.err, 1, true)
    r = H.moonspan({"evals", "flaky"}, {db = db})
    assert.are.equal(2, r.code)
    r = H.moonspan({"evals", "--help"}, {db = db})
    assert.are.equal(0, r.code)
    assert.matches("usage: moonspan evals flaky SUITE", r.out, 1, true)
  end)
end)
