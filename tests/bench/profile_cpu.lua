-- make bench: a CPU-bound pipeline for the profiler's overhead, run with
-- and without --profile. Spans of a few ms, each busy in Lua (a
-- recursion, a loop) and in C (table.sort), as a scoring step would be.
local n = tonumber((...)) or 400 -- the script's argument (`moonspan run` passes ARGS as ...)
local function fib(k) if k < 2 then return k end return fib(k - 1) + fib(k - 2) end
local function mix(k)
  local t = {}
  for i = 1, k do t[i] = (i * 7919) % 1009 end
  table.sort(t)
  return t[1]
end
local sum = 0
for i = 1, n do
  trace("request", function()
    span("score", function() sum = sum + fib(18) end)
    span("rank", function() sum = sum + mix(3000) end)
  end)
end
assert(sum > 0)
