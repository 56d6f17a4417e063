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

-- Starts an HTTP transfer (moonspan.http.start's request table) and waits
-- for it; returns the result table and the transfer handle. Raises the
-- transport error (or an on_chunk error) like h:result().
function sched.http(req)
  local h = moonspan.http.start(req)
  if in_task() then
    coroutine.yield(WAIT, "http", h)
  else
    moonspan.http.wait(h)
  end
  return h:result(), h
end

-- Waits ms milliseconds, yielding to the scheduler inside a task.
function sched.sleep(ms)
  if ms <= 0 then return end
  if in_task() then
    coroutine.yield(WAIT, "sleep", moonspan.now_ms() + ms)
  else
    moonspan.sleep_ms(ms)
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
        moonspan.sleep_ms(timeout)
      end
    end
  end
  local results = {}
  for i, t in ipairs(tasks) do results[i] = t.result end
  return results
end

return sched
