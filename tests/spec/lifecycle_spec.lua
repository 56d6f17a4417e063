-- The end of a run, however it comes: SIGINT/SIGTERM (once, twice, in any
-- coroutine, through any pcall), os.exit, coroutines never resumed; what
-- is stored then, and with which status.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")

local function trace_status(db, name)
  return H.scalar(db, "SELECT status FROM traces WHERE name = '" .. name .. "'")
end

describe("signals", function()
  it("SIGINT: exits 130 promptly; the interrupted span and trace are stored as interrupted, not errors", function()
    local r = H.run_bg([[
      trace("done_before", function() span("quick", function() end) end)
      span("sleepy", function()
        ready()
        moonspan.sleep_ms(10000)
      end)
    ]], "sleep 0.1; kill -INT $pid", {name = "interrupted"})
    assert.are.equal(130, r.status, r.err)
    assert.is_truthy(r.seconds < 5, "took " .. r.seconds .. " s")
    assert.is_truthy(r.err:find("interrupted by SIGINT at", 1, true), r.err)
    local _, by = H.spans(r.db, "interrupted")
    assert.are.equal("interrupted", by.sleepy.status)
    assert.are.equal(0, by.sleepy.error_own)
    assert.is_nil(by.sleepy.error_type)
    assert.is_truthy(by.sleepy.duration_ns >= 50e6)
    local t = H.trace_row(r.db, "interrupted")
    assert.are.equal("interrupted", t.status)
    assert.are.equal(0, t.error_count)
    assert.are.equal("ok", trace_status(r.db, "done_before"))
  end)

  it("SIGTERM: exits 143 and stores the open trace and its open spans as interrupted", function()
    local r = H.run_bg([[
      trace("terminated", function()
        span("outer", function()
          span("waiting", function()
            ready()
            moonspan.sleep_ms(10000)
          end)
        end)
      end)
    ]], "sleep 0.1; kill -TERM $pid")
    assert.are.equal(143, r.status, r.err)
    assert.are.equal("interrupted", trace_status(r.db, "terminated"))
    local _, by = H.spans(r.db, "terminated")
    assert.are.equal("interrupted", by.waiting.status)
    assert.are.equal("interrupted", by.outer.status)
    assert.are.equal(0, H.scalar(r.db, "SELECT count(*) FROM spans WHERE status = 'error'"))
  end)

  it("a pcall in the script cannot swallow it: a loop of pcall(trace, ...) stops and its traces are kept", function()
    local r = H.run_bg([[
      local n = 0
      while true do
        pcall(trace, "t", function() span("s", function() end) end)
        n = n + 1
        if n == 2000 then ready() end
      end
    ]], "sleep 0.2; kill -TERM $pid")
    assert.are.equal(143, r.status, r.err)
    assert.is_truthy(r.seconds < 5, "took " .. r.seconds .. " s")
    local rows = H.query(r.db, "SELECT status, count(*) AS n FROM traces WHERE name = 't' GROUP BY status")
    local by = {}
    for _, row in ipairs(rows) do by[row.status] = row.n end
    assert.is_truthy((by.ok or 0) >= 2000, "traces kept: " .. tostring(by.ok))
    assert.is_nil(by.error)
    assert.is_truthy((by.interrupted or 0) <= 1)
  end)

  it("interrupts a coroutine that is busy when the signal comes", function()
    local r = H.run_bg([[
      local co = coroutine.wrap(function()
        span("in_coroutine", function()
          ready()
          local x = 0
          while true do x = x + 1 end
        end)
      end)
      co()
    ]], "sleep 0.1; kill -INT $pid", {name = "busyco"})
    assert.are.equal(130, r.status, r.err)
    assert.is_truthy(r.seconds < 5, "took " .. r.seconds .. " s")
    local _, by = H.spans(r.db, "busyco")
    assert.are.equal("interrupted", by.in_coroutine.status)
  end)

  it("stops retry() from retrying an interrupted attempt", function()
    local r = H.run_bg([[
      span("flaky", function()
        retry{attempts = 50, backoff_ms = 1, function()
          span("attempt", function() ready(); moonspan.sleep_ms(10000) end)
        end}
      end)
    ]], "sleep 0.1; kill -INT $pid", {name = "retried"})
    assert.are.equal(130, r.status, r.err)
    assert.is_truthy(r.seconds < 5, "took " .. r.seconds .. " s")
    assert.are.equal(1, H.scalar(r.db, "SELECT count(*) FROM spans WHERE name = 'attempt'"))
    assert.are.equal("interrupted", H.scalar(r.db, "SELECT status FROM spans WHERE name = 'flaky'"))
  end)

  it("stops llm.map, whose workers pcall every call, and parallel tasks cut off keep their traces", function()
    local r = H.run_bg([[
      local slow = {model = "mock", messages = {{role = "user", content = "hi"}}, mock = {latency_ms = 10000}}
      parallel(
        function() trace("task1", function() llm.map({slow, slow, slow}, {concurrency = 3}) end) end,
        function() trace("task2", function() span("waits", function() ready(); llm.call(slow) end) end) end)
    ]], "sleep 0.2; kill -INT $pid")
    assert.are.equal(130, r.status, r.err)
    assert.is_truthy(r.seconds < 5, "took " .. r.seconds .. " s")
    assert.is_truthy(r.err:find("interrupted by SIGINT at .*bg.lua:%d+"), r.err) -- the script's line
    assert.are.equal("interrupted", trace_status(r.db, "task1"))
    assert.are.equal("interrupted", trace_status(r.db, "task2"))
    -- every call that had started is there, none of them left 'ok' or counted as an error
    local calls = H.query(r.db, "SELECT status, count(*) AS n FROM spans WHERE name = 'chat mock' GROUP BY status")
    assert.are.equal(1, #calls)
    assert.are.equal("interrupted", calls[1].status)
    assert.are.equal(4, calls[1].n)
    assert.are.equal(0, H.scalar(r.db, "SELECT sum(error_count) FROM traces"))
  end)

  it("a second signal writes every trace that has ended and leaves at once", function()
    -- the first SIGINT ends the script; its on_exit function then hangs, so
    -- only the second one gets the process out
    local r = H.run_bg([[
      moonspan.on_exit(function() local x = 0 while true do x = x + 1 end end)
      local log = io.open(READY .. ".log", "w")
      local n = 0
      while true do
        trace("t", function() for i = 1, 20 do span("s", function() end) end end)
        n = n + 1
        log:write(n, "\n")
        log:flush()
        if n == 3000 then ready() end
      end
    ]], "sleep 0.1; kill -INT $pid; sleep 0.5; kill -INT $pid")
    assert.are.equal(130, r.status, r.err)
    assert.is_truthy(r.err:find("second SIGINT", 1, true), r.err)
    local logged = 0
    for line in (H.read(r.dir .. "/ready.log") or ""):gmatch("[^\n]+") do logged = tonumber(line) end
    assert.is_truthy(logged >= 3000)
    assert.is_truthy(H.scalar(r.db, "SELECT count(*) FROM traces WHERE name = 't' AND status = 'ok'") >= logged)
  end)

  it("a signal during the final flush changes nothing that was written", function()
    -- a run trace of 300,000 spans is written only when the script ends;
    -- the signal lands while that happens
    local r = H.run_bg([[
      for i = 1, 300000 do span("s", function() end) end
      ready()
    ]], "kill -INT $pid; sleep 0.05; kill -TERM $pid 2>/dev/null; true", {name = "bigrun"})
    assert.is_truthy(r.status == 130 or r.status == 0, "status " .. tostring(r.status) .. ": " .. r.err)
    assert.are.equal(300001, H.scalar(r.db, "SELECT count(*) FROM spans"))
  end)
end)

describe("os.exit", function()
  it("inside trace(): keeps the exit status and stores the open trace as incomplete, with its spans", function()
    local r = H.run_script([[
      trace("before_exit", function() span("inside", function() end) end)
      trace("exiting", function(ctx)
        span("done_step", function() end)
        span("open_at_exit", function() os.exit(3) end)
      end)
      print("not reached")
    ]], {name = "exits"})
    assert.are.equal(3, r.code, r.err)
    assert.are.equal("", r.out)
    assert.are.equal("ok", trace_status(r.db, "before_exit"))
    assert.are.equal("incomplete", trace_status(r.db, "exiting"))
    local _, by = H.spans(r.db, "exiting")
    assert.are.equal("ok", by.done_step.status)
    assert.are.equal("incomplete", by.open_at_exit.status)
    assert.are.equal(0, H.scalar(r.db, "SELECT count(*) FROM spans WHERE status = 'error'"))
  end)

  it("runs on_exit functions, last registered first, with the reason", function()
    local dir = H.tmpdir("onexit")
    local out = dir .. "/order"
    local r = H.run_script(string.format([[
      local f = io.open(%q, "w")
      moonspan.on_exit(function(why) f:write("first ", why.reason, " ", why.status, "\n") f:close() end)
      local cancel = moonspan.on_exit(function() f:write("cancelled\n") end)
      moonspan.on_exit(function(why) f:write("second ", why.reason, "\n") end)
      cancel()
      os.exit(4)
    ]], out), {dir = dir})
    assert.are.equal(4, r.code, r.err)
    assert.are.equal("second exit\nfirst exit 4\n", H.read(out))
  end)

  it("inside an eval case: the eval run is closed as failed and the exit status says so", function()
    local dir = H.tmpdir("evalexit")
    H.write(dir .. "/exit_suite.lua", [[
      return suite "exits" {
        dataset = {{id = "a", input = "x"}, {id = "b", input = "y"}},
        run = function(case) if case.id == "b" then os.exit(0) end return case.input end,
        scorers = {function() return true end},
      }
    ]])
    local r = H.moonspan({"eval", "--concurrency", "1", dir .. "/exit_suite.lua"}, {db = dir .. "/x.db"})
    assert.are.equal(1, r.code, r.out .. r.err)
    local run = H.query(dir .. "/x.db", "SELECT status, cases, end_ns FROM eval_runs")[1]
    assert.are.equal("failed", run.status)
    assert.are.equal(1, run.cases)
    assert.is_number(run.end_ns)
  end)
end)

describe("traces whose coroutine is abandoned", function()
  it("are ended as incomplete and written when the coroutine is collected", function()
    local r = H.run_script([[
      local co = coroutine.create(function()
        trace("abandoned", function() span("inner", function() coroutine.yield() end) end)
      end)
      coroutine.resume(co)
      co = nil
      collectgarbage()
      collectgarbage()
      moonspan.flush()
      moonspan.sleep_ms(300)
      trace("after", function() end)
    ]])
    assert.are.equal(0, r.code, r.err)
    local t = H.trace_row(r.db, "abandoned")
    assert.are.equal("incomplete", t.status)
    -- ended when collected, not when the run ended 300 ms later
    assert.is_truthy(t.duration_ns < 250e6, "duration " .. t.duration_ns)
    local _, by = H.spans(r.db, "abandoned")
    assert.are.equal("incomplete", by.inner.status)
  end)

  it("are ended as incomplete when the run ends first", function()
    local r = H.run_script([[
      KEEP = coroutine.create(function()
        trace("left_open", function() span("inner", function() coroutine.yield() end) end)
      end)
      coroutine.resume(KEEP)
      trace("finished", function() end)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("incomplete", trace_status(r.db, "left_open"))
    assert.are.equal("ok", trace_status(r.db, "finished"))
  end)
end)

describe("errors that reach the console", function()
  it("show the frames inside the trace body where the error was raised", function()
    local r = H.run_script([[
      local function innermost_step() error("deep failure") end
      local function middle_step() innermost_step() end
      trace("req", function() span("work", function() middle_step() end) end)
    ]], {name = "tb"})
    assert.are.equal(1, r.code)
    assert.is_truthy(r.err:find("deep failure", 1, true), r.err)
    assert.is_truthy(r.err:find("innermost_step", 1, true), r.err)
    assert.is_truthy(r.err:find("middle_step", 1, true), r.err)
  end)
end)

describe("span nesting", function()
  local function nest_src(n)
    return string.format([[
      local function nest(n) if n == 0 then return end span("level", function() nest(n - 1) end) end
      nest(%d)
    ]], n)
  end

  it("works 150 spans deep, here and under moonspan test", function()
    local r = H.run_script(nest_src(150))
    assert.are.equal(0, r.code, r.err)
    local function nest(n) if n == 0 then return end span("level", function() nest(n - 1) end) end
    nest(150)
  end)

  it("names the limit one level deeper, instead of a C stack overflow", function()
    local r = H.run_script(nest_src(151))
    assert.are.equal(1, r.code)
    assert.is_truthy(r.err:find("would nest 151 spans deep; moonspan allows 150", 1, true), r.err)
    assert.is_nil(r.err:find("C stack overflow", 1, true), r.err)
  end)
end)
