-- JUnit XML for `moonspan eval --junit FILE` (moonspan.junit).
--
-- junit.xml(suites) builds the document from
--   {{name =, time_s =, properties = {{name, value}...},
--     cases = {{name =, classname =, time_s =, failure = {message =, type =, text =} | nil}}}}
-- junit.write(path, text) writes it to a temporary file next to `path`
-- and renames it into place, so a reader never sees a partial report.

local junit = {}

-- Characters XML 1.0 cannot carry at all (controls other than tab, LF,
-- CR) are shown as \xNN; the five special ones become entities.
local ENTITIES = {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;"}

function junit.escape(s)
  s = tostring(s)
  s = s:gsub("[%z\1-\8\11\12\14-\31\127]", function(c) return string.format("\\x%02x", c:byte()) end)
  return (s:gsub("[&<>\"']", ENTITIES))
end
local esc = junit.escape

local function secs(t)
  return string.format("%.3f", tonumber(t) or 0)
end

function junit.xml(suites)
  local out = {'<?xml version="1.0" encoding="UTF-8"?>'}
  local tests, failures, time = 0, 0, 0
  for _, s in ipairs(suites) do
    tests = tests + #s.cases
    for _, c in ipairs(s.cases) do
      if c.failure then failures = failures + 1 end
    end
    time = time + (s.time_s or 0)
  end
  out[#out + 1] = string.format('<testsuites name="moonspan eval" tests="%d" failures="%d" errors="0" time="%s">',
                                tests, failures, secs(time))
  for _, s in ipairs(suites) do
    local f = 0
    for _, c in ipairs(s.cases) do
      if c.failure then f = f + 1 end
    end
    out[#out + 1] = string.format('  <testsuite name="%s" tests="%d" failures="%d" errors="0" skipped="0" time="%s"%s>',
                                  esc(s.name), #s.cases, f, secs(s.time_s),
                                  s.timestamp and (' timestamp="' .. esc(s.timestamp) .. '"') or "")
    if s.properties and #s.properties > 0 then
      out[#out + 1] = "    <properties>"
      for _, p in ipairs(s.properties) do
        out[#out + 1] = string.format('      <property name="%s" value="%s"/>', esc(p[1]), esc(p[2]))
      end
      out[#out + 1] = "    </properties>"
    end
    for _, c in ipairs(s.cases) do
      local open = string.format('    <testcase name="%s" classname="%s" time="%s"', esc(c.name),
                                 esc(c.classname or s.name), secs(c.time_s))
      if c.failure then
        out[#out + 1] = open .. ">"
        out[#out + 1] = string.format('      <failure message="%s" type="%s">%s</failure>',
                                      esc(c.failure.message or ""), esc(c.failure.type or "failure"),
                                      esc(c.failure.text or ""))
        out[#out + 1] = "    </testcase>"
      else
        out[#out + 1] = open .. "/>"
      end
    end
    out[#out + 1] = "  </testsuite>"
  end
  out[#out + 1] = "</testsuites>"
  return table.concat(out, "\n") .. "\n"
end

-- Writes text to path through a temporary file and a rename. Returns true,
-- or nil and a message (the temporary file is removed then).
function junit.write(path, text)
  local tmp = string.format("%s.tmp-%d-%d", path, os.time(), math.random(0, 999999))
  local f, err = io.open(tmp, "wb")
  if not f then return nil, "cannot write " .. path .. ": " .. tostring(err) end
  local ok, werr = f:write(text)
  local cok, cerr = f:close()
  if not ok or not cok then
    os.remove(tmp)
    return nil, "cannot write " .. path .. ": " .. tostring(werr or cerr)
  end
  local rok, rerr = os.rename(tmp, path)
  if not rok then
    os.remove(tmp)
    return nil, "cannot write " .. path .. ": " .. tostring(rerr)
  end
  return true
end

return junit
