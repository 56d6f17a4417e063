-- Span levels from Lua: moonspan.set_level and moonspan.span_at.
--
-- span(name, {level = "debug"}, fn) decides in C, which costs a call into
-- the host even when the span is not recorded. span_at gives a function
-- bound to one level that decides here, in one comparison, so a hot loop
-- pays a plain call of its body when the level is off.
local M = {}

local RANK = {info = 0, debug = 1, trace = 2}
local NAME = {[0] = "info", "debug", "trace"}
local current = moonspan._level()       -- kept equal to the host's level
local set_native = moonspan._set_level
local NOSPAN = moonspan._nospan          -- the handle an unrecorded body gets
local cspan = span

local function rank_of(level, fn)
  local r = RANK[level]
  if not r then
    error(string.format("%s: level must be \"info\", \"debug\" or \"trace\", got %s", fn,
                        type(level) == "string" and "'" .. level .. "'" or type(level)), 3)
  end
  return r
end

-- moonspan.set_level(level) -> the previous level. What span() and trace()
-- record from now on.
function M.set_level(level)
  local r = rank_of(level, "moonspan.set_level")
  local previous = NAME[current]
  current = r
  set_native(r)
  return previous
end

-- moonspan.span_at(level) -> function(name, fn, ...): span(name, {level =
-- level}, fn, ...), deciding with one comparison. The body gets a handle
-- as span's does; attributes go through s:set.
function M.span_at(level)
  local r = rank_of(level, "moonspan.span_at")
  local opts = {level = level}
  return function(name, fn, ...)
    if r > current then return fn(NOSPAN, ...) end
    return cspan(name, opts, fn, ...)
  end
end

return M
