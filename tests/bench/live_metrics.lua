-- What --metrics-addr costs the script: N traces of 10 spans (1,000,000
-- spans by default), the loop timed inside the script, so the figure is
-- the script's own thread; run.sh runs it with and without the flag.
local n = tonumber(arg[1]) or 100000
local t0 = moonspan.now_ms()
for _ = 1, n do
  trace("request", function()
    for _ = 1, 9 do span("step", function() end) end
  end)
end
io.stderr:write(string.format("loop %.0f ms\n", moonspan.now_ms() - t0))
