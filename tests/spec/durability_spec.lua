-- What survives when the process cannot say goodbye (SIGKILL), when the
-- disk fills up, and what the WAL costs a store that gets traces one by one.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local q = H.q

-- Starts `moonspan run --quiet` on `src` in the background; the script
-- sees READY and LOG (paths); opts.env adds environment variables.
-- Returns pid, db, dir.
local function spawn_run(src, opts)
  opts = opts or {}
  local dir = H.tmpdir(opts.name or "kill")
  local script = H.write(dir .. "/s.lua", string.format("READY = %q\nLOG = %q\n", dir .. "/ready", dir .. "/log")
                         .. src)
  local db = dir .. "/x.db"
  local env = {}
  for k, v in pairs(opts.env or {}) do env[#env + 1] = k .. "=" .. q(v) end
  local pid = H.spawn(string.format("exec env %s %s --db %s run --quiet %s 2>%s", table.concat(env, " "),
                                    q(H.bin), q(db), q(script), q(dir .. "/stderr")))
  assert(H.wait_file(dir .. "/ready", 20), "the script never got ready: " .. (H.read(dir .. "/stderr") or ""))
  return pid, db, dir
end

-- The last "n time_ms" line of the log whose time is at or before `t`.
local function logged_before(dir, t)
  local n = 0
  for a, b in (H.read(dir .. "/log") or ""):gmatch("(%d+) ([%d.]+)\n") do
    if tonumber(b) <= t then n = tonumber(a) end
  end
  return n
end

describe("SIGKILL", function()
  it("loses at most the last moments: every trace that ended 0.5 s before the kill is stored", function()
    -- traces of 300 spans: the script makes them faster than SQLite takes
    -- them, so a queue bounded by length would hold seconds of them
    local pid, db, dir = spawn_run([[
      local log = io.open(LOG, "w")
      local n = 0
      while true do
        trace("t", function() for i = 1, 300 do span("s", function() end) end end)
        n = n + 1
        if n % 10 == 0 then log:write(n, " ", moonspan.now_ms(), "\n") log:flush() end
        if n == 10 then io.open(READY, "w"):close() end
      end
    ]])
    moonspan.sleep_ms(1500)
    local killed_at = moonspan.now_ms()
    os.execute("kill -KILL " .. pid)
    assert.is_true(H.wait_gone(pid, 10))
    local must = logged_before(dir, killed_at - 500)
    assert.is_truthy(must >= 10, "the script logged nothing before the kill")
    local stored = H.scalar(db, "SELECT count(*) FROM traces")
    assert.is_truthy(stored >= must, string.format("%d traces had ended 0.5 s before the kill, %d stored",
                                                   must, stored))
    assert.are.equal("ok", H.scalar(db, "PRAGMA integrity_check"))
  end)

  it("keeps everything moonspan.flush() returned for", function()
    local pid, db = spawn_run([[
      for i = 1, 50 do trace("flushed", function() span("s", function() end) end) end
      assert(moonspan.flush() == 0)
      io.open(READY, "w"):close()
      moonspan.sleep_ms(100000)
    ]])
    os.execute("kill -KILL " .. pid)
    assert.is_true(H.wait_gone(pid, 10))
    assert.are.equal(50, H.scalar(db, "SELECT count(*) FROM traces WHERE name = 'flushed'"))
  end)
end)

describe("a full disk", function()
  it("is reported when writing first fails, retried, and nothing is lost once there is room", function()
    -- a 4 MB tmpfs in a private mount namespace, mostly taken by a filler
    -- file; the store outgrows the rest, the filler goes, writing resumes
    local dir = H.tmpdir("full")
    local script = H.write(dir .. "/fill.lua", [[
      for i = 1, 200 do
        trace("big", function(ctx) ctx:set("payload", string.rep("x", 4000)) end)
      end
    ]])
    local D = q(dir)
    local r = H.sh(string.format([[
      unshare --user --map-root-user --mount sh -ec '
        D=%s
        mkdir -p $D/mnt
        mount -t tmpfs -o size=4m none $D/mnt
        dd if=/dev/zero of=$D/mnt/filler bs=1k count=3600 2>/dev/null
        %s --db $D/mnt/x.db run --quiet %s 2>$D/stderr & pid=$!
        i=0; until grep -q retrying $D/stderr || [ $i -ge 1000 ]; do sleep 0.02; i=$((i+1)); done
        cp $D/stderr $D/stderr.before
        kill -0 $pid && echo running > $D/was_running
        rm -f $D/mnt/filler
        wait $pid && echo 0 > $D/status || echo $? > $D/status
        sqlite3 $D/mnt/x.db "SELECT count(*) FROM traces WHERE name = \"big\"" > $D/count
        umount $D/mnt'
    ]], D, q(H.bin), q(script)))
    assert.are.equal(0, r.code, r.out .. r.err)
    local before = H.read(dir .. "/stderr.before") or ""
    assert.is_truthy(before:find("database or disk is full", 1, true), before)
    assert.is_truthy(before:find("retrying", 1, true), before)
    assert.are.equal("running\n", H.read(dir .. "/was_running"), "the run did not wait for room")
    assert.are.equal("0\n", H.read(dir .. "/status"), H.read(dir .. "/stderr"))
    local after = H.read(dir .. "/stderr") or ""
    assert.is_truthy(after:find("works again", 1, true), after)
    assert.are.equal("200\n", H.read(dir .. "/count"))
  end)
end)

describe("the WAL", function()
  it("does not grow with traces that come one at a time: it is folded back when the writer is idle", function()
    local dir = H.tmpdir("trickle")
    local r = H.run_script([[
      local wal = arg[1] .. "-wal"
      local function wal_size()
        local f = assert(io.open(wal, "rb"))
        local n = f:seek("end")
        f:close()
        return n
      end
      local sizes = {}
      for i = 1, 8 do
        trace("trickled", function(ctx) span("step", function(s) s:set("i", i) end) end)
        moonspan.sleep_ms(350) -- longer than the writer's idle time
        sizes[i] = wal_size()
      end
      print(sizes[1], sizes[8])
    ]], {dir = dir, args = {dir .. "/x.db"}})
    assert.are.equal(0, r.code, r.err)
    local first, last = r.out:match("(%d+)%s+(%d+)")
    first, last = tonumber(first), tonumber(last)
    assert.is_truthy(first > 0)
    -- eight commits without checkpoints would make it about eight times as big
    assert.is_truthy(last <= first * 2, string.format("WAL %d bytes after one trace, %d after eight", first, last))
  end)
end)

describe("SIGKILL during a long trace", function()
  it("leaves the parts written so far readable, marked incomplete, and every trace that ended complete", function()
    -- one trace that never ends, beside short ones that do; no trace() at
    -- all for the long one: the run trace of the script
    local pid, db, dir = spawn_run([[
      local log = io.open(LOG, "w")
      for i = 1, 50 do trace("short", function() span("s", function() end) end) end
      moonspan.flush()
      local n = 0
      while true do
        span("step", function() span("inner", function() end) end)
        n = n + 1
        if n % 1000 == 0 then log:write(n, " ", moonspan.now_ms(), "\n") log:flush() end
        if n == 1000 then io.open(READY, "w"):close() end
      end
    ]], {name = "long"})
    moonspan.sleep_ms(2500)
    local killed_at = moonspan.now_ms()
    os.execute("kill -KILL " .. pid)
    assert.is_true(H.wait_gone(pid, 10))
    assert.are.equal("ok", H.scalar(db, "PRAGMA integrity_check"))
    assert.are.equal(50, H.scalar(db, "SELECT count(*) FROM traces WHERE name = 'short' AND status = 'ok'"))
    local run = H.query(db, "SELECT id, status, parts, span_count FROM traces WHERE name = 's'")
    assert.are.equal(1, #run, "the run trace was not written while it was open")
    assert.are.equal("incomplete", run[1].status)
    assert.is_truthy(run[1].parts >= 1)
    -- written as it went: what ended more than the cut interval (1 s) and
    -- a margin before the kill is there, read back through the spans table
    local must = logged_before(dir, killed_at - 1500)
    assert.is_truthy(must >= 1000, "the script logged too little before the kill")
    local steps = H.scalar(db, "SELECT count(*) FROM spans WHERE trace_row = " .. run[1].id .. " AND name = 'step'")
    assert.is_truthy(steps >= must, string.format("%d steps had ended 1.5 s before the kill, %d stored", must, steps))
    -- an inner span ends before its step: the last part may hold one whose step was still open
    local inners = H.scalar(db, "SELECT count(*) FROM spans WHERE trace_row = " .. run[1].id .. " AND name = 'inner'")
    assert.is_truthy(inners == steps or inners == steps + 1, inners .. " inner spans for " .. steps .. " steps")
    -- and the readers take it: show lists its spans, the report counts it apart
    local show = H.moonspan({"show", H.scalar(db, "SELECT trace_id FROM traces WHERE name = 's'")}, {db = db})
    assert.are.equal(0, show.code, show.err)
    assert.is_truthy(show.out:find("step", 1, true), show.out)
    local rep = H.json(H.moonspan({"report", "--json"}, {db = db}).out)
    assert.are.equal(1, rep.requests.incomplete)
  end)
end)

describe("SIGKILL during a long wait", function()
  local fake = dofile(here .. "fake_server.lua").start(H)
  teardown(function() fake.stop() end)

  -- the script ends spans, then blocks: nothing else would end a span and
  -- cut the trace, so the wait itself must write what ended before it
  local function killed_while_waiting(wait, env)
    local pid, db = spawn_run([[
      span("before", function() end)   -- in the run trace
      trace("request", function()
        span("plan", function() end)
        span("search", function() end)
        span("rank", function() end)
        io.open(READY, "w"):close()
        ]] .. wait .. [[
      end)
    ]], {name = "wait", env = env})
    moonspan.sleep_ms(1500)
    os.execute("kill -KILL " .. pid)
    assert.is_true(H.wait_gone(pid, 10))
    assert.are.equal("ok", H.scalar(db, "PRAGMA integrity_check"))
    local names = {}
    for _, r in ipairs(H.query(db, "SELECT s.name FROM traces t JOIN spans s ON s.trace_row = t.id " ..
                                   "WHERE t.name = 'request' ORDER BY s.start_ns")) do
      names[#names + 1] = r.name
    end
    assert.are.same({"plan", "search", "rank"}, names)
    assert.are.equal(1, H.scalar(db, "SELECT count(*) FROM spans s JOIN traces t ON s.trace_row = t.id " ..
                                     "WHERE s.name = 'before'"))
    assert.are.equal("incomplete", H.scalar(db, "SELECT status FROM traces WHERE name = 'request'"))
  end

  it("leaves the spans that ended before moonspan.sleep_ms on disk", function()
    killed_while_waiting("moonspan.sleep_ms(60000)")
  end)

  it("leaves the spans that ended before a slow llm.call on disk", function()
    killed_while_waiting([[llm.call{model = "gpt-4o-2024-08-06", messages = {{role = "user", content = "hi"}},
                                     headers = {["x-fake-fault"] = "delay=60000"}}]],
                         fake.env{MOONSPAN_PROVIDER = "openai"})
  end)
end)
