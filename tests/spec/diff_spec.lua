-- `moonspan diff A B`: real child `moonspan run` processes write runs whose
-- differences are known (a step that sleeps 2 ms in one run and 8 ms in
-- the next, half the requests failing, longer LLM replies), into one
-- store; the verdicts, numbers and exit statuses of `diff` are checked
-- against them and against the stored spans themselves.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")

-- 40 "answer" requests: step "slow" sleeps SLOW ms, step "same" always 3 ms,
-- then a mock LLM call replying WORDS words; the first FAIL requests raise.
local SCRIPT = [=[
  local slow, fail, words = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3])
  for i = 1, 40 do
    pcall(trace, "answer", function()
      span("slow", function() moonspan.sleep_ms(slow) end)
      span("same", function() moonspan.sleep_ms(3) end)
      llm.call{model = "mock", messages = {{role = "user", content = "question " .. i}},
               mock = {reply = string.rep("word ", words)}}
      if i <= fail then error("broken on purpose") end
    end)
  end
]=]

local pct = H.pct

-- Fisher's exact two-sided p for k1 of n1 against k2 of n2, worked out
-- here from the hypergeometric distribution.
local function fisher(k1, n1, k2, n2)
  local function lchoose(n, k)
    local s = 0
    for i = 1, k do s = s + math.log(n - k + i) - math.log(i) end
    return s
  end
  local K, N = k1 + k2, n1 + n2
  local function prob(x) return math.exp(lchoose(n1, x) + lchoose(n2, K - x) - lchoose(N, K)) end
  local seen, p = prob(k1), 0
  for x = math.max(0, K - n2), math.min(K, n1) do
    local px = prob(x)
    if px <= seen * (1 + 1e-7) then p = p + px end
  end
  return math.min(1, p)
end

describe("moonspan diff", function()
  -- runs 1, 2 and 3: identical (the first also makes the store, and is
  -- left out of comparisons of latency); run 4: "slow" 8 ms; run 5: 20 of
  -- 40 fail; run 6: replies of 60 words instead of 3
  local store = H.once(function()
    local dir = H.tmpdir("diff")
    local db = dir .. "/s.db"
    for _, args in ipairs{{"2", "0", "3"}, {"2", "0", "3"}, {"2", "0", "3"}, {"8", "0", "3"}, {"2", "20", "3"},
                          {"2", "0", "60"}} do
      H.run_ok(SCRIPT, {dir = dir, db = db, name = "pipeline", args = args})
    end
    return db
  end)

  local function diff(args, code)
    local r = H.moonspan(args, {db = store()})
    assert.are.equal(code or 0, r.code, r.out .. r.err)
    return r
  end
  local function diff_json(args, code)
    local argv = {"diff", "--json"}
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    local r = diff(argv, code)
    local ok, j = pcall(H.json, r.out)
    assert.is_true(ok, "diff --json is not JSON: " .. r.out)
    return j
  end
  local function step(j, name)
    for _, s in ipairs(j.steps) do
      if s.name == name then return s end
    end
    error("no step " .. name)
  end

  it("finds the step that got slower, with an interval that excludes 0, and its numbers", function()
    local j = diff_json{"run:2", "run:4"}
    local slow = step(j, "slow")
    assert.are.equal("slower", slow.verdict)
    assert.are.same({"slow"}, slow.path)
    assert.are.equal(40, slow.count_a)
    assert.are.equal(40, slow.count_b)
    assert.is_true(slow.p50_ms.lo > 0 and slow.p50_ms.lo <= slow.p50_ms.diff and
                   slow.p50_ms.diff <= slow.p50_ms.hi,
                   string.format("p50 interval [%g, %g]", slow.p50_ms.lo, slow.p50_ms.hi))
    assert.is_true(slow.p50_ms.diff > 5 and slow.p50_ms.diff < 8, "p50 diff " .. slow.p50_ms.diff)
    -- the step most changed comes first
    assert.are.equal("slow", j.steps[1].name)
    -- the unchanged step's median has no verdict of change (its p95, the
    -- 2nd-slowest of 40 sleeps on a machine shared with other work, may)
    local same = step(j, "same").p50_ms
    assert.is_truthy(same.verdict == "no evidence" or same.verdict == "negligible",
                     string.format("%s: %g -> %g ms [%g, %g]", same.verdict, same.a, same.b, same.lo, same.hi))
    -- p50 and p95 of each side are the stored spans' own percentiles
    for side, run in pairs{a = 2, b = 4} do
      local rows = H.query(store(), "SELECT s.duration_ns AS d FROM spans s JOIN traces t ON"
                           .. " t.id = s.trace_row WHERE t.run_id = " .. run .. " AND s.name = 'slow'")
      local v = {}
      for _, row in ipairs(rows) do v[#v + 1] = row.d end
      table.sort(v)
      assert.are.equal(40, #v)
      for _, q in ipairs{50, 95} do
        local want = math.floor(pct(v, q) + 0.5) / 1e6
        local got = slow["p" .. q .. "_ms"][side]
        assert.is_true(math.abs(want - got) < 1e-9, string.format("p%d %s: %g vs %g", q, side, want, got))
      end
    end
    -- the requests got slower too, and --fail-if slower fails on it
    assert.are.equal("slower", j.requests[1].time)
    assert.is_nil(j.requests[1].name)
    local r = diff({"diff", "run:2", "run:4", "--fail-if", "slower"}, 1)
    assert.matches("step 'slow': slower", r.out, 1, true)
    assert.matches("failed (exit 1)", r.out, 1, true)
  end)

  it("says no evidence anywhere, and exits 0 under --fail-if, for a run against itself", function()
    local j = diff_json{"2", "2", "--fail-if", "slower,costlier,errors"}
    assert.is_false(j.failed)
    local req = j.requests[1]
    for _, k in ipairs{"time", "cost", "errors"} do
      assert.are.equal("no evidence", req[k], k)
    end
    for _, k in ipairs{"p50_ms", "p95_ms", "tokens_per_request", "cost_usd_per_request", "error_rate",
                       "llm_failure_rate"} do
      assert.are.equal("no evidence", req[k].verdict, k)
      assert.are.equal(0, req[k].diff, k)
    end
    assert.are.equal(3, #j.steps)
    for _, s in ipairs(j.steps) do
      assert.are.equal("no evidence", s.verdict, s.name)
      assert.is_true(s.p50_ms.lo <= 0 and s.p50_ms.hi >= 0, s.name)
    end
  end)

  it("sees no change in cost or errors, nor in the median step, between two runs of the same pipeline", function()
    local j = diff_json{"run:2", "run:3", "--fail-if", "costlier,errors"}
    assert.is_false(j.failed)
    assert.are.equal("no evidence", j.requests[1].cost)
    assert.are.equal("no evidence", j.requests[1].errors)
    -- sleeps of 2 and 3 ms: their medians move by far less than 5% from
    -- run to run (the p95 of 40 requests on a shared machine may not)
    for _, name in ipairs{"slow", "same"} do
      local v = step(j, name).p50_ms.verdict
      assert.is_truthy(v == "no evidence" or v == "negligible", name .. ": " .. v)
    end
    local r = diff{"diff", "2", "3", "--fail-if", "errors,costlier"}
    assert.matches("no row shows evidence of that (exit 0)", r.out, 1, true)
  end)

  it("tests error rates exactly: 0/40 against 20/40 is more errors, and --fail-if errors exits 1", function()
    local j = diff_json({"run:2", "run:5", "--fail-if", "errors"}, 1)
    local e = j.requests[1].error_rate
    assert.are.same({0, 40, 20, 40}, {e.k_a, e.n_a, e.k_b, e.n_b})
    assert.are.equal("more errors", e.verdict)
    assert.are.equal("more errors", j.requests[1].errors)
    assert.is_true(e.lo > 0 and e.lo < 0.5 and e.hi > 0.5, string.format("[%g, %g]", e.lo, e.hi))
    assert.are.equal(0.5, e.diff)
    local want = fisher(0, 40, 20, 40)
    assert.is_true(math.abs(e.p - want) <= 1e-9 * want, string.format("p %g vs %g", e.p, want))
    assert.is_true(j.failed)
    assert.is_true(j.requests[1].fails)
    -- the LLM calls themselves all succeeded: no evidence there
    assert.are.equal("no evidence", j.requests[1].llm_failure_rate.verdict)
    assert.are.equal(40, j.requests[1].llm_failure_rate.n_b)
    -- the other way round is fewer errors, and does not fail
    local back = diff_json{"run:5", "run:2", "--fail-if", "errors"}
    assert.are.equal("fewer errors", back.requests[1].errors)
    assert.is_false(back.failed)
  end)

  it("finds the costlier run from its tokens and cost per request", function()
    local j = diff_json({"run:2", "run:6", "--fail-if", "costlier"}, 1)
    local req = j.requests[1]
    assert.are.equal("costlier", req.tokens_per_request.verdict)
    assert.are.equal("costlier", req.cost_usd_per_request.verdict)
    assert.are.equal("costlier", req.cost)
    -- the means are the stored rows' own
    for side, run in pairs{a = 2, b = 6} do
      local row = H.query(store(), "SELECT avg(input_tokens + output_tokens) AS t, avg(cost_usd) AS c"
                          .. " FROM traces WHERE run_id = " .. run)[1]
      assert.is_true(math.abs(row.t - req.tokens_per_request[side]) < 1e-9)
      assert.is_true(math.abs(row.c - req.cost_usd_per_request[side]) < 1e-12)
    end
    assert.is_true(req.tokens_per_request.lo > 0)
    -- the step that got costlier is the LLM call's: its tokens per span are
    -- the calls' own, and a step with no call inside has no usage row
    local call = step(j, "chat mock")
    assert.are.equal("costlier", call.cost)
    assert.are.equal("costlier", call.tokens_per_span.verdict)
    for side, run in pairs{a = 2, b = 6} do
      local row = H.query(store(), "SELECT avg(s.input_tokens + s.output_tokens) AS t FROM spans s"
                          .. " JOIN traces t ON t.id = s.trace_row WHERE t.run_id = " .. run
                          .. " AND s.kind = 'llm'")[1]
      assert.is_true(math.abs(row.t - call.tokens_per_span[side]) < 1e-9, side)
    end
    assert.is_true(call.fails)
    assert.is_nil(step(j, "slow").tokens_per_span)
    assert.is_nil(step(j, "slow").cost)
    local r = diff({"diff", "run:2", "run:6", "--fail-if", "costlier"}, 1)
    assert.matches("requests (all): costlier", r.out, 1, true)
    assert.matches("step 'chat mock': costlier", r.out, 1, true)
    assert.matches("LLM calls inside the steps, per span of the step", r.out, 1, true)
  end)

  it("gives the sides and the method in --json, and lists steps with their paths", function()
    local j = diff_json{"run:2", "run:4", "--seed", "7", "--resamples", "500"}
    assert.are.equal("run:2", j.a.arg)
    assert.are.equal("run", j.a.kind)
    assert.are.equal(2, j.a.run_id)
    assert.are.equal(4, j.b.run_id)
    assert.are.equal(40, j.a.requests)
    assert.are.equal(40, j.a.steps_from_requests)
    assert.are.equal(7, j.method.seed)
    assert.are.equal(500, j.method.resamples)
    assert.are.equal(0.95, j.method.level)
    assert.are.equal(5, j.method.min_n)
    assert.are.equal(0.05, j.method.min_change)
    assert.are.equal(40, j.requests[1].count_a.completed)
    assert.are.equal(40, j.requests[1].p50_ms.n_a)
    assert.are.equal(0, j.steps_omitted)
    assert.are.same({}, j.fail_if)
    -- --steps 1 keeps the most changed one and says how many were left out
    local one = diff_json{"run:2", "run:4", "--steps", "1"}
    assert.are.equal(1, #one.steps)
    assert.are.equal("slow", one.steps[1].name)
    assert.are.equal(#j.steps - 1, one.steps_omitted)
  end)

  it("is deterministic: the same seed gives the same output, another seed other intervals", function()
    local a = diff{"diff", "run:2", "run:4", "--seed", "3"}.out
    local b = diff{"diff", "run:2", "run:4", "--seed", "3"}.out
    local c = diff{"diff", "run:2", "run:4", "--seed", "4"}.out
    assert.are.equal(a, b)
    assert.are_not.equal(a, c)
    assert.matches("seed 3", a, 1, true)
  end)

  it("takes last and last~N, windows and globs as sides", function()
    local j = diff_json{"last~1", "last"}
    assert.are.equal(5, j.a.run_id)
    assert.are.equal(6, j.b.run_id)
    local w = diff_json{"1h..", "answer*"}
    assert.are.equal("window", w.a.kind)
    assert.are.equal(240, w.a.requests)
    assert.are.equal("glob", w.b.kind)
    assert.are.equal("answer*", w.b.name_glob)
    assert.are.equal(240, w.b.requests)
    -- narrowing options apply to both sides
    local n = diff_json{"1h..", "answer*", "--run", "3"}
    assert.are.equal(40, n.a.requests)
    assert.are.equal(40, n.b.requests)
  end)

  it("writes the text for people with the method stated once and the steps aligned", function()
    local r = diff{"diff", "run:2", "run:4"}
    assert.are.equal("", r.err)
    assert.matches("percentile bootstrap (2000 resamples, seed 1)", r.out, 1, true)
    assert.matches("Requests: all (40 completed in A, 40 in B): time slower", r.out, 1, true)
    assert.matches("\n  slow%s+40%s+40%s.-slower\n", r.out)
    assert.matches("steps from 40 of 40 requests in A, 40 of 40 in B", r.out, 1, true)
  end)

  it("refuses bad sides and options with one line naming the fix, exit 2, nothing on stdout", function()
    local cases = {
      {{"run:1"}, "needs two sides"},
      {{"run:1", "run:2", "run:3"}, "a third side"},
      {{"run:x", "run:2"}, "side A 'run:x': 'x' is not a run id"},
      {{"run:1", "run:99"}, "side B 'run:99'"},
      {{"eval:7", "run:1"}, "side A 'eval:7'"},
      {{"7d..14d", "run:1"}, "starts after it ends"},
      {{"14x..7d", "run:1"}, "'14x' is not a duration ago"},
      {{"..", "run:1"}, "a window with no ends"},
      {{"nothing_like_this*", "run:1"}, "side A 'nothing_like_this*' has no traces"},
      {{"last~9", "run:1"}, "side A 'last~9' names no run"},
      {{"last~0", "run:1"}, "not a number of runs back"},
      {{"answer*", "run:1", "--name", "x*"}, "is a trace-name glob and --name gives another"},
      {{"run:1", "run:2", "--run", "1"}, "--run names one too"},
      {{"run:1", "run:2", "--fail-if", "faster"}, "'faster' is not a condition"},
      {{"run:1", "run:2", "--resamples", "5"}, "--resamples"},
      {{"run:1", "run:2", "--by", "day"}, "--by 'day' is not a grouping"},
      {{"run:1", "run:2", "--min-change", "lots"}, "--min-change 'lots' is not a percentage"},
      {{"run:1", "run:2", "--bogus"}, "--bogus"},
      {{"", "run:2"}, "side A is empty"},
    }
    for _, c in ipairs(cases) do
      local argv = {"diff"}
      for _, a in ipairs(c[1]) do argv[#argv + 1] = a end
      local r = H.moonspan(argv, {db = store()})
      local what = table.concat(c[1], " ")
      assert.are.equal(2, r.code, what .. ": " .. r.err)
      assert.are.equal("", r.out, what)
      assert.matches(c[2], r.err, 1, true)
      assert.are.equal(1, select(2, r.err:gsub("\n", "")), what .. ": one line: " .. r.err)
    end
  end)

  it("prints its help and exits 0", function()
    local r = H.moonspan{"diff", "--help"}
    assert.are.equal(0, r.code)
    assert.matches("usage: moonspan diff", r.out, 1, true)
    assert.matches("--fail-if", r.out, 1, true)
  end)

  it("adds a row for each request name both sides have often enough", function()
    local dir = H.tmpdir("diff_names")
    local db = dir .. "/s.db"
    local src = [[
      for i = 1, 6 do trace("beta", function() end) trace("alpha", function() end) end
      for i = 1, 2 do trace("delta", function() end) end
      if arg[1] == "more" then for i = 1, 6 do trace("gamma", function() end) end end
    ]]
    H.run_ok(src, {dir = dir, db = db})
    H.run_ok(src, {dir = dir, db = db, args = {"more"}})
    local r = H.moonspan({"diff", "--json", "1", "2"}, {db = db})
    assert.are.equal(0, r.code, r.err)
    local j = H.json(r.out)
    assert.are.equal(3, #j.requests)
    assert.is_nil(j.requests[1].name)
    assert.are.equal(14, j.requests[1].count_a.requests)
    assert.are.equal(20, j.requests[1].count_b.requests)
    -- delta, on both sides but 2 a side, gets no row of its own; gamma is in B only
    assert.are.equal(1, j.names_too_few)
    assert.are.equal("alpha", j.requests[2].name)
    assert.are.equal("beta", j.requests[3].name)
    assert.are.equal(6, j.requests[3].count_b.requests)
    local text = H.moonspan({"diff", "1", "2"}, {db = db}).out
    assert.matches("Requests: 'alpha' (6 completed in A, 6 in B)", text, 1, true)
    assert.matches("(1 request name on both sides with fewer than 5 completed on a side", text, 1, true)
  end)

  it("counts a step span with no LLM call inside as 0 tokens, even before the first call", function()
    local dir = H.tmpdir("diff_maybe")
    local db = dir .. "/s.db"
    -- "maybe" calls the model in the 7th to 10th request only
    local src = [[
      for i = 1, 10 do
        trace("req", function()
          span("maybe", function()
            if i > 6 then llm.call{model = "mock", messages = {{role = "user", content = "q" .. i}}} end
          end)
        end)
      end
    ]]
    H.run_ok(src, {dir = dir, db = db})
    H.run_ok(src, {dir = dir, db = db})
    local r = H.moonspan({"diff", "--json", "1", "2"}, {db = db})
    assert.are.equal(0, r.code, r.err)
    local maybe
    for _, s in ipairs(H.json(r.out).steps) do
      if s.name == "maybe" then maybe = s end
    end
    local row = H.query(db, "SELECT sum(s.input_tokens + s.output_tokens) AS t FROM spans s JOIN traces t"
                        .. " ON t.id = s.trace_row WHERE t.run_id = 1 AND s.kind = 'llm'")[1]
    assert.is_true(row.t > 0)
    assert.are.equal(10, maybe.tokens_per_span.n_a)
    assert.is_true(math.abs(row.t / 10 - maybe.tokens_per_span.a) < 1e-9)
  end)

  it("counts requests cut short apart, in no sample", function()
    local dir = H.tmpdir("diff_cut")
    local db = dir .. "/s.db"
    local src = [[
      for i = 1, 6 do trace("req", function() span("step", function() end) end) end
      if arg[1] == "cut" then trace("req", function() os.exit(0) end) end
    ]]
    H.run_ok(src, {dir = dir, db = db})
    H.run_ok(src, {dir = dir, db = db, args = {"cut"}})
    local r = H.moonspan({"diff", "--json", "1", "2"}, {db = db})
    assert.are.equal(0, r.code, r.err)
    local req = H.json(r.out).requests[1]
    assert.are.equal(7, req.count_b.requests)
    assert.are.equal(1, req.count_b.incomplete)
    assert.are.equal(6, req.count_b.completed)
    assert.are.equal(6, req.p50_ms.n_b)
    assert.are.equal(6, req.error_rate.n_b)
    assert.are.equal(0, req.error_rate.k_b)
    local text = H.moonspan({"diff", "1", "2"}, {db = db}).out
    assert.matches("7 requests (0 interrupted, 1 incomplete: counted apart)", text, 1, true)
  end)

  it("escapes the names it prints", function()
    local dir = H.tmpdir("diff_esc")
    local db = dir .. "/s.db"
    local src = [[for i = 1, 6 do trace("req\27]0;t\7", function() span("x\27[2J", function() end) end) end]]
    H.run_ok(src, {dir = dir, db = db})
    H.run_ok(src, {dir = dir, db = db})
    local r = H.moonspan({"diff", "1", "2", "--fail-if", "slower"}, {db = db})
    assert.is_truthy(r.code == 0 or r.code == 1, r.err)
    assert.is_nil(r.out:find("\27", 1, true))
    assert.matches("x\\x1b[2J", r.out, 1, true)
  end)
end)

describe("moonspan diff on folded and sampled runs", function()
  -- 20 requests, each with 50 repetitions of "rep" recorded as one fold;
  -- run with --sample, the requests keep their summary rows only
  local FOLDED = [=[
    for i = 1, 20 do
      trace("folded", function()
        span("outer", function()
          for k = 1, 50 do span("rep", {fold = true}, function() end) end
        end)
      end)
    end
  ]=]
  local store = H.once(function()
    local dir = H.tmpdir("diff_fold")
    local db = dir .. "/s.db"
    H.run_ok(FOLDED, {dir = dir, db = db, name = "folded"})
    H.run_ok(FOLDED, {dir = dir, db = db, name = "folded"})
    H.run_ok(FOLDED, {dir = dir, db = db, name = "folded", run_args = {"--sample", "0.000001"}})
    return db
  end)

  it("counts a fold's repetitions, and marks its percentiles approximate", function()
    local r = H.moonspan({"diff", "--json", "1", "2"}, {db = store()})
    assert.are.equal(0, r.code, r.err)
    local j = H.json(r.out)
    local rep
    for _, s in ipairs(j.steps) do
      if s.name == "rep" then rep = s end
    end
    assert.is_truthy(rep, r.out)
    assert.are.same({"outer", "rep"}, rep.path)
    assert.are.equal(1000, rep.count_a)
    assert.are.equal(1000, rep.count_b)
    assert.is_true(rep.approximate)
    assert.is_number(rep.p50_ms.lo)
    local text = H.moonspan({"diff", "1", "2"}, {db = store()}).out
    assert.matches("outer/rep%s*~", text)
    assert.matches("~ folded spans", text, 1, true)
  end)

  it("takes request numbers from sampled-out summaries, and says the steps came from fewer", function()
    local r = H.moonspan({"diff", "--json", "1", "3"}, {db = store()})
    assert.are.equal(0, r.code, r.err)
    local j = H.json(r.out)
    assert.are.equal(20, j.b.requests)
    assert.are.equal(0, j.b.steps_from_requests)
    assert.are.equal(20, j.requests[1].count_b.sampled_out)
    assert.are.equal(20, j.requests[1].p50_ms.n_b)
    for _, s in ipairs(j.steps) do
      assert.are.equal(0, s.count_b, s.name)
      assert.are.equal("gone in B", s.verdict, s.name)
    end
    local text = H.moonspan({"diff", "1", "3"}, {db = store()}).out
    assert.matches("steps from 20 of 20 requests in A, 0 of 20 in B", text, 1, true)
  end)
end)
