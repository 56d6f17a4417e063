-- ns per span() from Lua: empty body, inside traces of 1,000 spans each,
-- every span persisted. Prints the cost the script pays per span (the loop)
-- and, for make bench to add the flush, the span count.
local n = tonumber(arg[1]) or 1000000
local per = 1000
local body = function() end
local t0 = moonspan.now_ms()
for _ = 1, n // per do
  trace("bench", function()
    for _ = 1, per do span("step", body) end
  end)
end
local ms = moonspan.now_ms() - t0
print(string.format("span() from Lua, empty body: %.0f ns per span (%d spans in %.0f ms)",
  ms * 1e6 / n, n, ms))
