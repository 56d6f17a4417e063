-- What each kind of span() costs the script, against calling its body
-- directly: a span below the run's level, a folded repetition, a recorded
-- span, and the two hot-loop forms (span_at, moonspan.fold). Bodies and
-- option tables are made once, as a hot loop should.
local n = tonumber(arg[1]) or 1000000
local body = function() end
local DEBUG, FOLD = {level = "debug"}, {fold = true}

local function time(label, f)
  local best = math.huge
  for _ = 1, 3 do
    local t0 = moonspan.now_ms()
    trace("bench", f)
    best = math.min(best, moonspan.now_ms() - t0)
  end
  return best * 1e6 / n
end

local bare = time("bare", function() for _ = 1, n do body() end end)
local skipped = time("skipped", function() for _ = 1, n do span("step", DEBUG, body) end end)
local folded = time("folded", function() for _ = 1, n do span("step", FOLD, body) end end)
-- recorded: 1,000-span traces so the writer keeps up, as on the hot path
local recorded = time("recorded", function()
  for _ = 1, n // 1000 do span("outer", function() for _ = 1, 1000 do span("step", body) end end) end
end)
print(string.format("  a call of the body itself:          %4.0f ns", bare))
print(string.format("  span() below the level:             %4.0f ns (%+.0f ns over the call)", skipped, skipped - bare))
print(string.format("  span() folded ({fold = true}):      %4.0f ns (%+.0f ns over the call)", folded, folded - bare))
print(string.format("  span() recorded:                    %4.0f ns (%+.0f ns over the call)", recorded, recorded - bare))
local dspan = moonspan.span_at("debug")
local at = time("span_at", function() for _ = 1, n do dspan("step", body) end end)
local rep = moonspan.fold("step")
local timed = time("fold", function()
  local t = moonspan.clock()
  for _ = 1, n do body(); t = rep(t) end
end)
print(string.format("  span_at(\"debug\") below the level:   %4.0f ns (%+.0f ns over the call)", at, at - bare))
print(string.format("  moonspan.fold repetition, t = rep(t): %4.0f ns (%+.0f ns over the call)", timed, timed - bare))
