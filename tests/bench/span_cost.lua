-- ns per span() from Lua, empty body, inside traces of 1,000 spans each,
-- every span persisted: the cost the script pays per span. Measured for a
-- body that takes no handle and for one that takes the handle `s` (which
-- costs one small allocation per span).
local n = tonumber(arg[1]) or 1000000
local per = 1000

local function measure(label, body)
  local t0 = moonspan.now_ms()
  for _ = 1, n // per do
    trace("bench", function()
      for _ = 1, per do span("step", body) end
    end)
  end
  local ms = moonspan.now_ms() - t0
  print(string.format("span() from Lua, %s: %.0f ns per span (%d spans in %.0f ms)",
    label, ms * 1e6 / n, n, ms))
end

measure("empty body function() end", function() end)
measure("empty body function(s) end", function(s) end)
