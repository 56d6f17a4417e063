-- The Lua half of moonspan's API, loaded into every script's globals.
-- span() and trace() are native (host/bind_trace.c); what is written here
-- is what users may want to read or adapt.
retry = require "moonspan.retry"
llm = require "moonspan.llm"
do
  local levels = require "moonspan.levels"
  moonspan.set_level, moonspan.span_at = levels.set_level, levels.span_at
end

local sched = require "moonspan.sched"

-- parallel(fn1, fn2, ...) — runs the functions concurrently (llm.call and
-- waits inside them yield instead of blocking) and returns the first
-- result of each, in order. Spans opened in each nest under the span that
-- called parallel. When any raised, the first such error (by argument
-- order) is raised again unchanged once all have finished.
function parallel(...)
  local fns = table.pack(...)
  for i = 1, fns.n do
    if type(fns[i]) ~= "function" then
      error(string.format("parallel: argument %d is a %s, expected a function", i, type(fns[i])), 2)
    end
  end
  local results = sched.run({table.unpack(fns, 1, fns.n)})
  local values = {}
  for i = 1, fns.n do
    local r = results[i]
    if not r[1] then error(r[2], 0) end
    values[i] = r[2]
  end
  return table.unpack(values, 1, fns.n)
end
