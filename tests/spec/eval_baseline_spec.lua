-- Which run `moonspan eval --baseline` compares with: the choice itself
-- (moonspan.eval_baseline, on runs as the store lists them) and the real
-- binary on a real store, where a --filter run must not become the
-- baseline of a full run.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local B = require "moonspan.eval_baseline"

-- 2026-11-27 14:02 UTC
local T0 = 1795788120 * 1000000000

local function run(id, config, extra)
  local r = {id = id, start_ns = T0 + id, cases = 3, config = config or {}, git_commit = "abc1234def5678"}
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

local ALL = {"a", "b", "c"}
local function ids_of(map)
  return function(id) return map[id] or ALL end
end

describe("moonspan.eval_baseline", function()
  local sel = {filter = nil, dataset = "cases.jsonl", repeat_count = 1, case_ids = ALL}

  it("describes a run by id, start in UTC, results and short commit", function()
    assert.are.equal("eval run 12 of 2026-11-27 14:02 UTC (45 results, commit abc1234)",
                     B.describe_run(run(12, {}, {cases = 45, start_ns = T0})))
    assert.are.equal("eval run 1 of 2026-11-27 14:02 UTC (1 result)",
                     B.describe_run(run(1, {}, {cases = 1, git_commit = false})))
  end)

  it("says why a run did not run this run's cases", function()
    assert.is_nil(B.mismatch(run(1, {dataset = "cases.jsonl"}), ALL, sel))
    assert.are.equal("--filter 'case1'", B.mismatch(run(1, {filter = "case1"}), {"a"}, sel))
    assert.are.equal("no --filter (this run: --filter 'a*')",
                     B.mismatch(run(1, {}), ALL, {filter = "a*", repeat_count = 1, case_ids = {"a"}}))
    assert.are.equal("dataset other.jsonl (this run: cases.jsonl)",
                     B.mismatch(run(1, {dataset = "other.jsonl"}), ALL, sel))
    assert.are.equal("lacks 1 of this run's 3 cases (c)", B.mismatch(run(1), {"a", "b"}, sel))
    assert.are.equal("has 2 cases this run does not (d, e)", B.mismatch(run(1), {"a", "b", "c", "d", "e"}, sel))
    assert.are.equal("lacks 1 of this run's 3 cases (c) and has 1 case this run does not (z)",
                     B.mismatch(run(1), {"a", "b", "z"}, sel))
    -- the case ids are read only when filter and dataset agree
    assert.are.equal("--filter 'x'", B.mismatch(run(1, {filter = "x"}), function() error("read") end, sel))
  end)

  it("last: the newest comparable run, naming the newer ones it skipped", function()
    local runs = {run(14, {filter = "case1"}), run(13, {dataset = "old.jsonl"}), run(12), run(11)}
    local choice = B.choose_last(runs, ids_of{}, sel)
    assert.are.equal(12, choice.id)
    assert.are.equal("eval run 12 of 2026-11-27 14:02 UTC (3 results, commit abc1234); skipped run 14: "
                     .. "--filter 'case1'; skipped run 13: dataset old.jsonl (this run: cases.jsonl)",
                     B.choice_text(choice, sel))
  end)

  it("last: prefers the same --repeat, else takes the newest comparable run and says so", function()
    local runs = {run(5, {repeat_count = 3}), run(4, {filter = "x"}), run(3, {repeat_count = 1}), run(2)}
    local choice = B.choose_last(runs, ids_of{}, sel)
    assert.are.equal(3, choice.id)
    assert.is_truthy(B.choice_text(choice, sel):find("skipped run 5: --repeat 3 (this run: --repeat 1); "
                                                     .. "skipped run 4: --filter 'x'", 1, true))
    choice = B.choose_last({run(5, {repeat_count = 3}), run(4, {filter = "x"}), run(3, {repeat_count = 2})},
                           ids_of{}, sel)
    assert.are.equal(5, choice.id)
    assert.is_true(choice.repeat_differs)
    local text = B.choice_text(choice, sel)
    assert.is_truthy(text:find("the newest comparable run, with --repeat 3 (this run: --repeat 1)", 1, true), text)
    assert.is_falsy(text:find("skipped", 1, true), text) -- nothing newer was skipped
  end)

  it("last: none comparable is a note naming what was skipped and the fix; none at all says so", function()
    local choice, note = B.choose_last({run(2, {filter = "a"}), run(1)}, ids_of{[1] = {"a"}}, sel)
    assert.is_nil(choice)
    assert.are.equal("no comparable earlier run to compare with: skipped run 2: --filter 'a'; skipped run 1: "
                     .. "lacks 2 of this run's 3 cases (b, c); run the suite once with the same cases to start "
                     .. "a baseline, or name a run with --baseline ID", note)
    choice, note = B.choose_last({}, ids_of{}, sel)
    assert.is_nil(choice)
    assert.is_truthy(note:find("no earlier run to compare with", 1, true))
  end)

  it("lists at most five skipped runs", function()
    local runs = {}
    for i = 1, 8 do runs[i] = run(20 - i, {filter = "f" .. i}) end
    runs[9] = run(1)
    local text = B.choice_text(B.choose_last(runs, ids_of{}, sel), sel)
    local tail = "skipped run 15: --filter 'f5'; and 3 more skipped"
    assert.are.equal(tail, text:sub(-#tail))
  end)
end)

describe("moonspan eval --baseline on a real store", function()
  local dir, db, f
  local function eval(args)
    local all = {"eval"}
    for _, a in ipairs(args) do all[#all + 1] = a end
    all[#all + 1] = f
    return H.moonspan(all, {db = db})
  end
  setup(function()
    dir = H.tmpdir("baseline-choice")
    db = dir .. "/x.db"
    f = H.write(dir .. "/s.lua", [[
      return suite "pick" {
        dataset = {{id = "case1", input = "x"}, {id = "case2", input = "y"}, {id = "case3", input = "z"}},
        run = function(case) return case.input end,
        scorers = {function() return true end},
      }]])
    assert.are.equal(0, eval({}).code)                        -- run 1: every case
    assert.are.equal(0, eval({"--filter", "case1"}).code)     -- run 2: one case
    assert.are.equal(0, eval({"--repeat", "2"}).code)         -- run 3: every case twice
  end)

  it("last skips the --filter run and the --repeat run, and says which it chose and why", function()
    local r = eval({"--baseline", "last"})
    assert.are.equal(0, r.code, r.err)
    local line = r.out:match("\n  baseline: ([^\n]*)")
    assert.is_truthy(line, r.out)
    assert.is_truthy(line:find("^eval run 1 of %d%d%d%d%-%d%d%-%d%d %d%d:%d%d UTC %(3 results"), line)
    assert.is_truthy(line:find("skipped run 3: --repeat 2 (this run: --repeat 1); skipped run 2: --filter 'case1'",
                               1, true), line)
    assert.is_truthy(r.out:find("vs eval run 1:", 1, true), r.out)
  end)

  it("an explicit incomparable run is used, with a warning", function()
    local r = eval({"--baseline", "2"})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.err:find("warning: --baseline 2: suite \"pick\": eval run 2 is not comparable with this run: "
                                .. "--filter 'case1'", 1, true), r.err)
    assert.is_truthy(r.out:find("vs eval run 2:", 1, true), r.out)
    assert.is_truthy(r.out:find("not comparable: --filter 'case1'", 1, true), r.out)
  end)

  it("a --filter run takes the last run with the same filter", function()
    local r = eval({"--baseline", "last", "--filter", "case1"})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("baseline: eval run 2 of", 1, true), r.out)
  end)
end)
