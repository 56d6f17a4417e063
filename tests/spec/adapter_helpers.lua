-- Helpers for adapters_spec.lua: recorded payloads, feeding a stream parser
-- in awkward chunks, catching the error tables adapters raise.
-- Load with
--   local AH = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "adapter_helpers.lua")
local cjson = require "cjson"

local AH = {}

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
AH.fixtures = here .. "../fixtures/"

-- The bytes of tests/fixtures/<provider>/<name>; fails the test when missing.
function AH.fixture(provider, name)
  local path = AH.fixtures .. provider .. "/" .. name
  local f = io.open(path, "rb")
  if not f then error("missing fixture " .. path, 2) end
  local s = f:read("a")
  f:close()
  return s
end

-- Decodes JSON with null -> nil (for comparing request bodies).
local function denull(v)
  if v == cjson.null then return nil end
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = denull(x) end
  end
  return v
end

function AH.json(s)
  return denull(cjson.decode(s))
end

-- A reproducible pseudo-random sequence (an LCG), so a failing split can be
-- replayed: rng(seed)() -> integer in [1, n].
function AH.rng(seed)
  local state = seed
  return function(n)
    state = (state * 1103515245 + 12345) % 2147483648
    return state % n + 1
  end
end

-- Splits s into pieces: size = a number (fixed size), or "random" with a
-- seed (sizes 1..17, which cut lines, JSON and UTF-8 sequences anywhere).
function AH.split(s, size, seed)
  local pieces, pos = {}, 1
  local r = AH.rng(seed or 1)
  while pos <= #s do
    local n = size == "random" and r(17) or size
    pieces[#pieces + 1] = s:sub(pos, pos + n - 1)
    pos = pos + n
  end
  return pieces
end

-- Runs a whole stream through adapter.stream: returns the normalised
-- response (or nil and the error), the on_text pieces and the parser.
function AH.run_stream(adapter, body, size, seed, opts)
  local got = {}
  local p = adapter.stream(function(piece) got[#got + 1] = piece end, opts)
  local ok, err = pcall(function()
    for _, c in ipairs(AH.split(body, size or #body, seed)) do p:feed(c) end
    return p:finish()
  end)
  if ok then return err, got, p end
  return nil, got, p, err
end

-- Calls fn and returns the error it raised (fails when it does not raise).
function AH.catch(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error, but the call succeeded")
  return err
end

-- Every string reachable from v (keys and values), for "the key appears
-- nowhere" checks.
function AH.strings(v, out, seen)
  out, seen = out or {}, seen or {}
  if type(v) == "string" then
    out[#out + 1] = v
  elseif type(v) == "table" and not seen[v] then
    seen[v] = true
    for k, x in pairs(v) do
      AH.strings(k, out, seen)
      AH.strings(x, out, seen)
    end
  elseif v ~= nil then
    out[#out + 1] = tostring(v)
  end
  return out
end

function AH.contains(v, needle)
  for _, s in ipairs(AH.strings(v)) do
    if s:find(needle, 1, true) then return true end
  end
  return false
end

-- The SSE text of a list of {event, data-table} pairs (data encoded).
function AH.sse(events)
  local out = {}
  for _, e in ipairs(events) do
    if e[1] then out[#out + 1] = "event: " .. e[1] .. "\n" end
    local data = type(e[2]) == "string" and e[2] or cjson.encode(e[2])
    out[#out + 1] = "data: " .. data .. "\n\n"
  end
  return table.concat(out)
end

return AH
