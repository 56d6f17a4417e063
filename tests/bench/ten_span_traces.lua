-- The realistic shape: many small traces, every span persisted. N traces
-- of 10 spans (the root and 9 empty steps); run.sh times the whole
-- process, start-up and the final flush included, so the figure is what a
-- script pays per span when the writer has to keep up.
local n = tonumber(arg[1]) or 100000
for _ = 1, n do
  trace("request", function()
    for _ = 1, 9 do span("step", function() end) end
  end)
end
