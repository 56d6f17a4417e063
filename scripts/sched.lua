-- The cooperative scheduler behind parallel() and llm.map().
--
-- Tasks are coroutines. A task that would block — an HTTP transfer, a
-- backoff or simulated-latency wait — yields to the scheduler instead,
-- which drives curl's multi interface (moonspan.http.poll) and resumes
-- each task when its transfer has finished or its timer is due. Outside a
-- task the same calls simply block, so llm.call works the same everywhere.
--
-- Because coroutine.create is the host's, a task's spans nest under the
-- span that was open where parallel() was called, never under a sibling.

local sched = {}

local WAIT = setmetatable({}, {__name = "moonspan.sched.wait"}) -- marks our own yields
local tasks_of = setmetatable({}, {__mode = "k"})                 -- coroutine -> true

local function in_task()
  local co, main = coroutine.running()
  return not main and tasks_of[co] ~= nil
end
sched.in_task = in_task

-- The host's blocking waits, kept for outside a task and for the
-- scheduler's own idle wait; moonspan.sleep_ms and moonspan.http.wait
-- become the yielding versions below.
local block_sleep = moonspan.sleep_ms
local block_wait = moonspan.http and moonspan.http.wait

-- A task can yield here unless a C function without a continuation
-- (a table.sort comparator, a metamethod) is between it and the scheduler.
local function can_yield()
  return in_task() and coroutine.isyieldable()
end

-- Starts an HTTP transfer (moonspan.http.start's request table) and waits
-- for it; returns the result table and the transfer handle. Raises the
-- transport error (or an on_chunk error) like h:result().
function sched.http(req)
  local h = moonspan.http.start(req)
  if can_yield() then
    coroutine.yield(WAIT, "http", h)
  else
    block_wait(h)
  end
  return h:result(), h
end

-- Waits ms milliseconds, yielding to the scheduler inside a task.
function sched.sleep(ms)
  if ms <= 0 then return end
  if can_yield() then
    coroutine.yield(WAIT, "sleep", moonspan.now_ms() + ms)
  else
    block_sleep(ms)
  end
end

-- moonspan.sleep_ms(ms): inside a task (parallel, llm.map, eval cases) it
-- yields until its deadline, so the other tasks run meanwhile; elsewhere
-- it is the host's sleep. Arguments are checked as the host checks them.
function moonspan.sleep_ms(ms)
  local n = tonumber(ms)
  if n == nil then
    error(string.format("bad argument #1 to 'sleep_ms' (number expected, got %s)", ms == nil and "no value" or type(ms)), 2)
  elseif not (n >= 0 and n < 1e10) then
    error("bad argument #1 to 'sleep_ms' (milliseconds must be between 0 and 1e10)", 2)
  end
  if can_yield() then
    sched.sleep(n)
  else
    block_sleep(n)
  end
end

-- moonspan.http.wait(h): inside a task it yields until h's transfer is
-- done (the scheduler drives every transfer meanwhile); elsewhere it
-- drives them itself.
if block_wait then
  function moonspan.http.wait(h)
    if not can_yield() then return block_wait(h) end
    local ok, done = pcall(function() return h.done end)
    if not (ok and type(h) == "userdata" and type(done) == "function") then
      return block_wait(h) -- raises the host's error about h
    end
    if not h:done() then coroutine.yield(WAIT, "http", h) end
  end
end

-- moonspan.exec{"cmd", "arg", ..., stdin = "text", timeout_ms = n}: runs a
-- command (looked up on PATH; no shell) and returns {status, signal,
-- stdout, stderr, timed_out, elapsed_ms}. Inside a task it yields while
-- the command runs, checking it every few milliseconds; elsewhere it
-- waits. A command that cannot start raises an error saying why.
local EXEC_FIELDS = {stdin = true, timeout_ms = true}
if moonspan._exec_start then
  function moonspan.exec(cmd)
    if type(cmd) ~= "table" then
      error('moonspan.exec: expected a table such as moonspan.exec{"ls", "-l", stdin = "...", timeout_ms = 5000}', 2)
    end
    for k in pairs(cmd) do
      if math.type(k) ~= "integer" and not EXEC_FIELDS[k] then
        error(string.format("moonspan.exec: unknown field '%s' (the fields are stdin and timeout_ms)", tostring(k)), 2)
      end
    end
    if cmd[1] == nil then
      error('moonspan.exec: the command is missing, e.g. moonspan.exec{"ls", "-l"}', 2)
    end
    if cmd.stdin ~= nil and type(cmd.stdin) ~= "string" then
      error("moonspan.exec: stdin must be a string, got a " .. type(cmd.stdin), 2)
    end
    local t = cmd.timeout_ms
    if t ~= nil and (math.type(t) ~= "integer" or t < 0) then
      error("moonspan.exec: timeout_ms must be a whole number of milliseconds >= 0 (0: none), got "
            .. tostring(t), 2)
    end
    local argv = table.move(cmd, 1, #cmd, 1, {})
    local ok, h = pcall(moonspan._exec_start, argv, cmd.stdin, t)
    if not ok then error(h, 2) end
    if can_yield() then
      local pause = 1
      while not h:done() do
        sched.sleep(pause)
        pause = math.min(pause * 2, 10) -- quick commands answer fast, long ones cost little
      end
    else
      h:wait()
    end
    return h:result()
  end
end

-- Runs the functions concurrently, each as a task, until all have
-- finished. Returns a list: results[i] = table.pack(ok, ...) of fns[i].
-- Inside a task (parallel within parallel) it waits by yielding to the
-- scheduler above, so the outer tasks go on meanwhile.
function sched.run(fns)
  local nested = in_task()
  local tasks = {}
  for i, fn in ipairs(fns) do
    local co = coroutine.create(fn)
    tasks_of[co] = true
    tasks[i] = {co = co, ready = true}
  end
  local pending = #tasks
  while pending > 0 do
    local progressed = false
    local now = moonspan.now_ms()
    for _, t in ipairs(tasks) do
      if not t.result and (t.ready or (t.handle and t.handle:done()) or (t.wake and now >= t.wake)) then
        t.ready, t.handle, t.wake, t.polls = false, nil, nil, nil
        local r = table.pack(coroutine.resume(t.co))
        if coroutine.status(t.co) == "dead" then
          t.result = r
          pending = pending - 1
        elseif r[2] == WAIT then
          if r[3] == "http" then
            t.handle = r[4]
          else
            t.wake = r[4]
            t.polls = r[3] == "poll" -- a nested scheduler: its transfers finish unseen here
          end
        else
          t.ready = true -- a plain coroutine.yield from the task's body: just go on
        end
        progressed = true
        now = moonspan.now_ms()
      end
    end
    if pending > 0 and not progressed then
      local wake, waiting_http = math.huge, false
      for _, t in ipairs(tasks) do
        if t.wake and t.wake < wake then wake = t.wake end
        if t.handle or t.polls then waiting_http = true end
      end
      local timeout = math.max(0, math.min(wake - moonspan.now_ms(), 100))
      if nested then
        coroutine.yield(WAIT, waiting_http and "poll" or "sleep", moonspan.now_ms() + timeout)
      elseif waiting_http then
        if #moonspan.http.poll(math.ceil(timeout)) > 0 then
          for _, t in ipairs(tasks) do
            if t.polls then t.ready = true end -- one of theirs may be among them
          end
        end
      else
        block_sleep(timeout)
      end
    end
  end
  local results = {}
  for i, t in ipairs(tasks) do results[i] = t.result end
  return results
end

return sched
