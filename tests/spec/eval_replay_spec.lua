-- `moonspan eval --replay` end to end: what a call the recording lacks does
-- (--replay-miss fail|live|record, live calls over real HTTP to
-- tests/fake_llm), and the latency a replayed case is scored with.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local fake = dofile(here .. "fake_server.lua").start(H)

teardown(function() fake.stop() end)

local function eval(args, opts)
  opts = opts or {}
  local all = {"eval"}
  for _, a in ipairs(args) do all[#all + 1] = a end
  return H.moonspan(all, {db = opts.db, env = opts.env})
end

-- A suite of two cases asking OpenAI (tests/fake_llm) a question each;
-- case "b" asks `b_question`, so changing it makes a request the
-- recording has not seen.
local function openai_suite(dir, b_question)
  return H.write(dir .. "/ask.lua", string.format([[
    return suite "ask" {
      dataset = {{id = "a", input = "what is 2+2?"}, {id = "b", input = %q}},
      run = function(case)
        return llm.call{model = "gpt-4o-2024-08-06", messages = {{role = "user", content = case.input}}}.text
      end,
      scorers = {function(out) return type(out) == "string" and #out > 0 end},
    }]], b_question))
end

-- A new folder whose store x.db holds eval run 1, recorded from the suite
-- asking "first"; the fake server's counts reset after it. Returns dir, db.
local function recorded_first(tag)
  local dir = H.tmpdir(tag)
  local db = dir .. "/x.db"
  assert.are.equal(0, eval({"--record", openai_suite(dir, "first")}, {db = db, env = fake.env()}).code)
  fake.reset()
  return dir, db
end

local function llm_spans(db, eval_run)
  return H.query(db, "SELECT s.attrs, s.replayed, s.cost_usd FROM spans s JOIN traces t ON t.id = s.trace_row"
                     .. " JOIN eval_results r ON r.trace_id = t.trace_id"
                     .. " WHERE s.kind = 'llm' AND r.eval_run = " .. eval_run .. " ORDER BY r.case_id")
end

describe("--replay-miss", function()
  it("is refused without --replay, and with a value other than fail, live, record (exit 2)", function()
    local dir = H.tmpdir("miss-bad")
    local f = openai_suite(dir, "q")
    local r = eval({"--replay-miss", "live", f}, {db = dir .. "/x.db"})
    assert.are.equal(2, r.code, r.err)
    assert.is_truthy(r.err:find("--replay-miss live needs --replay", 1, true), r.err)
    r = eval({"--replay", "last", "--replay-miss", "sometimes", f}, {db = dir .. "/x.db"})
    assert.are.equal(2, r.code, r.err)
    assert.is_truthy(r.err:find("not fail, live or record", 1, true), r.err)
    assert.is_falsy(H.exists(dir .. "/x.db") and H.scalar(dir .. "/x.db", "SELECT count(*) FROM eval_runs") > 0)
    local help = eval({"--help"})
    assert.are.equal(0, help.code)
    assert.is_truthy(help.out:find("--replay-miss fail|live|record", 1, true), help.out)
  end)

  it("fail (the default): the missed call fails its case, and the summary counts it", function()
    local dir, db = recorded_first("miss-fail")
    local r = eval({"--replay", "1", openai_suite(dir, "second")}, {db = db, env = fake.env()})
    assert.are.equal(1, r.code, r.err)
    assert.are.equal(0, fake.stats().requests)
    assert.is_truthy(r.out:find("replay of eval run 1: 1 LLM call replayed, 1 missed and failed "
                                .. "(--replay-miss fail)", 1, true), r.out)
    assert.is_truthy(r.out:find("--replay-miss live", 1, true), r.out) -- the error names the way out
  end)

  it("live: the missed call goes to the provider, marked on its span and counted as live spend", function()
    local dir, db = recorded_first("miss-live")
    local r = eval({"--replay", "1", "--replay-miss", "live", openai_suite(dir, "second")},
                   {db = db, env = fake.env()})
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(1, fake.stats().requests)
    assert.is_truthy(H.json(fake.last().body).messages[1].content == "second")
    assert.is_truthy(r.out:find("replay of eval run 1: 1 LLM call replayed, 1 missed and went live "
                                .. "(--replay-miss live)", 1, true), r.out)
    local spans = llm_spans(db, 2)
    assert.are.equal(2, #spans)
    assert.are.equal(1, spans[1].replayed) -- case a: from the recording
    assert.is_nil(H.json(spans[1].attrs)["llm.replay_miss"])
    assert.is_nil(spans[2].replayed)       -- case b: live
    assert.are.equal("live", H.json(spans[2].attrs)["llm.replay_miss"])
    assert.is_true(spans[2].cost_usd > 0)
    -- live spend is the live call's; the replayed one is kept apart
    local run = H.query(db, "SELECT cost_usd, replayed_cost_usd, recorded FROM eval_runs WHERE id = 2")[1]
    assert.is_true(math.abs(run.cost_usd - spans[2].cost_usd) < 1e-12, tostring(run.cost_usd))
    assert.is_true(math.abs(run.replayed_cost_usd - spans[1].cost_usd) < 1e-12)
    assert.are.equal(0, run.recorded)
    assert.are.equal(0, H.scalar(db, "SELECT count(*) FROM llm_recordings WHERE eval_run = 2"))
  end)

  it("record: the missed call goes live and is recorded, so a replay of this run needs no provider", function()
    local dir, db = recorded_first("miss-record")
    local f = openai_suite(dir, "second")
    local r = eval({"--replay", "1", "--replay-miss", "record", f}, {db = db, env = fake.env()})
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(1, fake.stats().requests)
    assert.is_truthy(r.out:find("1 missed and went live and was recorded in eval run 2 (--replay-miss record)",
                                1, true), r.out)
    assert.are.equal("record", H.json(llm_spans(db, 2)[2].attrs)["llm.replay_miss"])
    assert.are.equal(1, H.scalar(db, "SELECT recorded FROM eval_runs WHERE id = 2"))
    -- both answers: the replayed one copied, the live one recorded
    assert.are.equal(2, H.scalar(db, "SELECT count(*) FROM llm_recordings WHERE eval_run = 2"))
    fake.reset()
    r = eval({"--replay", "2", f}, {db = db, env = fake.env()})
    assert.are.equal(0, r.code, r.err .. r.out)
    assert.are.equal(0, fake.stats().requests)
    assert.is_truthy(r.out:find("replay of eval run 2: 2 LLM calls replayed, none missed", 1, true), r.out)
    assert.are.equal(2, H.scalar(db, "SELECT sum(replayed) FROM eval_results WHERE eval_run = 3"))
  end)
end)

describe("latency under --replay", function()
  -- one call of a mock that takes 150 ms live
  local function slow_suite(dir, limit)
    return H.write(dir .. "/slow.lua", string.format([[
      return suite "slow" {
        dataset = {{id = "a", input = "hello"}},
        run = function(case)
          return llm.call{model = "mock", messages = {{role = "user", content = case.input}},
                          mock = {latency_ms = 150}}.text
        end,
        scorers = {max_latency_ms(%d)},
      }]], limit))
  end

  it("scores a replayed case by its recorded latency, not the replay's, and says so", function()
    local dir = H.tmpdir("replay-latency")
    local db = dir .. "/x.db"
    local rec = eval({"--record", slow_suite(dir, 100)}, {db = db})
    assert.are.equal(1, rec.code, rec.out) -- 150 ms > 100 ms live
    local recorded = H.scalar(db, "SELECT json_extract(response, '$.latency_ms') FROM llm_recordings")
    assert.is_true(recorded >= 150, tostring(recorded))
    local r = eval({"--replay", "last", slow_suite(dir, 100)}, {db = db})
    assert.are.equal(1, r.code, r.out) -- and still too slow when replayed
    local reason = H.json(H.scalar(db, "SELECT scores FROM eval_results WHERE eval_run = 2"))[1].reason
    assert.is_truthy(reason:find("^latency 15%d%.%d ms > 100%.0 ms %(1 replayed LLM call timed as recorded, "), reason)
    local lat = H.scalar(db, "SELECT latency_ms FROM eval_results WHERE eval_run = 2")
    assert.is_true(lat >= 150, tostring(lat))
    local trace_ms = H.scalar(db, "SELECT t.duration_ns / 1e6 FROM traces t JOIN eval_results r"
                                  .. " ON r.trace_id = t.trace_id WHERE r.eval_run = 2")
    assert.is_true(trace_ms < 150, "the replay itself took " .. trace_ms .. " ms")
    local attrs = H.json(H.scalar(db, "SELECT s.attrs FROM spans s JOIN traces t ON t.id = s.trace_row"
                                      .. " JOIN eval_results r ON r.trace_id = t.trace_id"
                                      .. " WHERE s.kind = 'llm' AND r.eval_run = 2"))
    assert.is_true(math.abs(attrs["llm.recorded_latency_ms"] - recorded) < 1e-6)
    -- a limit the recorded latency meets passes, with the same note
    local ok = eval({"--replay", "1", slow_suite(dir, 1000)}, {db = db})
    assert.are.equal(0, ok.code, ok.out)
  end)

  it("a recording without latencies (an older moonspan's) makes max_latency_ms an error naming the fix", function()
    local dir = H.tmpdir("replay-latency-old")
    local db = dir .. "/x.db"
    assert.are.equal(0, eval({"--record", slow_suite(dir, 1000)}, {db = db}).code)
    H.sh("sqlite3 " .. H.q(db) .. " \"UPDATE llm_recordings SET response = json_remove(response, '$.latency_ms')\"")
    local r = eval({"--replay", "last", slow_suite(dir, 1000)}, {db = db})
    assert.are.equal(1, r.code, r.out)
    assert.is_truthy(r.out:find("latency is unknown: 1 of its 1 replayed LLM call was recorded without its latency",
                                1, true), r.out)
    assert.is_truthy(r.out:find("--record", 1, true), r.out)
    assert.is_nil(H.scalar(db, "SELECT latency_ms FROM eval_results WHERE eval_run = 2"))
  end)
end)
