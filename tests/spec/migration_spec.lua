-- A store written by an older moonspan (tests/fixtures/store_v2/: schema
-- version 2, one row per span) upgraded to the packed layout in place:
-- the report says what it said before, and every span and event reads
-- back through the spans tables as it was stored.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")
local q = H.q

local FIX = H.root .. "/tests/fixtures/store_v2/"

local SPAN_COLS = "trace_row, span_id, parent_id, hex(name) AS name_hex, kind, start_ns, duration_ns,"
  .. " status, error_own, error_type, error_message, error_traceback, attrs, provider, model,"
  .. " input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, usage_estimated, cost_usd,"
  .. " retries, retry_succeeded, ttft_ns, replayed"
local EVENT_COLS = "trace_row, span_id, name, time_ns, attrs"

-- A fresh copy of the old store.
local function old_store()
  local db = H.tmpdir("v2") .. "/old.db"
  local r = H.sh("sqlite3 " .. q(db) .. " < " .. q(FIX .. "store.sql"))
  assert(r.code == 0, r.err)
  return db
end

local function sql_json(db, sql)
  local r = H.moonspan({"sql", "--json", sql}, {db = db})
  assert.are.equal(0, r.code, r.err)
  return H.json(r.out)
end

-- Every key of `want` has the same value in `got` (floats within 1e-9).
local function same(want, got, path)
  if type(want) == "table" then
    assert.is_table(got, path)
    for k, v in pairs(want) do same(v, got[k], path .. "." .. tostring(k)) end
  elseif type(want) == "number" and math.type(want) == "float" then
    assert.is_number(got, path)
    assert.is_truthy(math.abs(want - got) <= 1e-9 * math.max(1, math.abs(want)), path .. ": " .. want .. " vs " .. got)
  else
    assert.are.equal(want, got, path)
  end
end

describe("a version 2 store", function()
  local upgraded = H.once(function()
    local db = old_store()
    local r = H.moonspan({"upgrade"}, {db = db})
    assert(r.code == 0, r.err)
    return {db = db, run = r}
  end)

  it("is refused by the readers, with the fix named, and left as it was", function()
    local db = old_store()
    local r = H.moonspan({"report"}, {db = db})
    assert.are.equal(2, r.code)
    assert.is_truthy(r.err:find("is a store of version 2", 1, true), r.err)
    assert.is_truthy(r.err:find("upgrade", 1, true), r.err)
    assert.are.equal(2, H.scalar(db, "PRAGMA user_version"))
  end)

  it("upgrades in place, showing its progress", function()
    local db, r = upgraded().db, upgraded().run
    assert.is_truthy(r.out:find("upgraded from version 2 to 6", 1, true), r.out)
    assert.is_truthy(r.err:find("repacking traces 20/20", 1, true), r.err)
    assert.are.equal(6, H.scalar(db, "PRAGMA user_version"))
    assert.are.equal("ok", H.scalar(db, "PRAGMA integrity_check"))
    assert.are.equal(0, H.scalar(db, "SELECT count(*) FROM sqlite_master WHERE name IN ('spans', 'span_events')"))
    local again = H.moonspan({"upgrade"}, {db = db})
    assert.are.equal(0, again.code, again.err)
    assert.is_truthy(again.out:find("already at version 6", 1, true), again.out)
  end)

  it("reports what it reported before", function()
    local db = upgraded().db
    -- report.json was written when steps were grouped by name alone, and
    -- when the report counted eval traces with the others
    local r = H.moonspan({"report", "--json", "--by", "name", "--evals", "include"}, {db = db})
    assert.are.equal(0, r.code, r.err)
    same(H.json(H.read(FIX .. "report.json")), H.json(r.out), "report")
    -- by default the suite's 10 case traces are left out, and said to be
    local d = H.json(H.moonspan({"report", "--json"}, {db = db}).out)
    assert.are.equal(10, d.requests.count)
    assert.are.equal(10, d.window.evals_left_out)
  end)

  it("keeps every span as it was stored: ids, parents, times, fields, errors, attributes", function()
    local db = upgraded().db
    local want = H.json(H.read(FIX .. "spans.json"))
    local got = sql_json(db, "SELECT " .. SPAN_COLS .. " FROM spans ORDER BY trace_row, span_id")
    assert.are.equal(#want, #got)
    local error_traces = {}
    for _, row in ipairs(H.query(db, "SELECT id FROM traces WHERE status = 'error'")) do error_traces[row.id] = true end
    for i, w in ipairs(want) do
      -- one change on purpose (v3): a root span carries its trace's status
      if w.kind == "trace" and error_traces[w.trace_row] then w.status = "error" end
      same(w, got[i], "span " .. i)
    end
  end)

  it("keeps every event; a ctx:add_error's JSON became its typed error (v3)", function()
    local db = upgraded().db
    local want = H.json(H.read(FIX .. "events.json"))
    local got = sql_json(db, "SELECT " .. EVENT_COLS .. ", error_type, error_message FROM span_events"
                             .. " ORDER BY trace_row, span_id, time_ns")
    assert.are.equal(#want, #got)
    for i, w in ipairs(want) do
      if w.name == "error" then
        local old = H.json(w.attrs)
        w.attrs = nil
        w.error_type, w.error_message = old.type, old.message
      end
      same(w, got[i], "event " .. i)
    end
  end)

  it("answers the same through the sqlite3 CLI with the extension loaded", function()
    local db = upgraded().db
    local sql = "SELECT " .. SPAN_COLS .. " FROM spans ORDER BY trace_row, span_id"
    same(sql_json(db, sql), H.query(db, sql), "sqlite3")
  end)
end)

-- Version 5 adds a table (span_profiles, the profiler's) and columns
-- (traces.sampled_out; what each run's telemetry did, on runs). A version
-- 4 store, made here from a new one by taking them away again:
describe("a version 4 store", function()
  -- what v5 added, and v6's columns after it (a v4 store has neither)
  local V5_COLUMNS = {
    traces = {"sampled_out", "session", "user_id", "tags"},
    runs = {"end_ns", "level", "fold_above", "sample_rate", "spans_kept", "fold_repetitions", "spans_skipped",
            "traces_sampled_out", "spans_sampled_out", "ns_per_span", "ns_per_fold", "ns_per_skip",
            "telemetry_ns"},
  }
  local function v4_store()
    local r = H.run_ok([[span("s", function() end)]])
    local sql = {"DROP TABLE span_profiles;"}
    for tbl, cols in pairs(V5_COLUMNS) do
      for _, c in ipairs(cols) do sql[#sql + 1] = "ALTER TABLE " .. tbl .. " DROP COLUMN " .. c .. ";" end
    end
    sql[#sql + 1] = "PRAGMA user_version = 4"
    H.query(r.db, table.concat(sql, " "))
    return r.db
  end

  it("is refused by the readers, naming the upgrade, and left as it was", function()
    local db = v4_store()
    local r = H.moonspan({"report", "--json"}, {db = db})
    assert.are.equal(2, r.code)
    assert.is_truthy(r.err:find("is a store of version 4, older than this moonspan reads (5)", 1, true), r.err)
    assert.is_truthy(r.err:find("moonspan --db " .. db .. " upgrade", 1, true), r.err)
    assert.are.equal(4, H.scalar(db, "PRAGMA user_version"))
    assert.are.equal(0, H.scalar(db, "SELECT count(*) FROM sqlite_master WHERE name = 'span_profiles'"))
  end)

  it("is brought to version 6 by the next run, its traces kept", function()
    local db = v4_store()
    H.run_ok([[span("t", function() end)]], {db = db})
    assert.are.equal(6, H.scalar(db, "PRAGMA user_version"))
    assert.are.equal(1, H.scalar(db, "SELECT count(*) FROM sqlite_master WHERE name = 'span_profiles'"))
    assert.are.equal(2, H.scalar(db, "SELECT count(*) FROM traces"))
    assert.are.equal(0, H.scalar(db, "SELECT sum(sampled_out) FROM traces"))
    -- the run before the upgrade has no figures; the one after has them
    assert.are.equal(1, H.scalar(db, "SELECT count(*) FROM runs WHERE end_ns IS NULL"))
    assert.are.equal(1, H.scalar(db, "SELECT count(*) FROM runs WHERE level = 'info'"))
    local r = H.moonspan({"report", "--overhead"}, {db = db})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("not recorded", 1, true), r.out)
  end)
end)
