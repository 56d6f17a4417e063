-- Helpers for the eval specs: an in-memory stand-in for the host's
-- moonspan.eval_store (same functions, results JSON round-tripped as the
-- host does, integral numbers as integers), captured stdout/stderr, and a way to call eval.main with
-- both in place.
--   local EH = dofile(dir .. "eval_helpers.lua")
local cjson = require "cjson"

local EH = {}

local function roundtrip(v)
  if v == nil then return nil end
  local d = cjson.decode(cjson.encode({v = v}))
  local function denull(x)
    if x == cjson.null then return nil end
    if math.type(x) == "float" and x == math.floor(x) and math.abs(x) < 2 ^ 53 then return math.tointeger(x) end
    if type(x) == "table" then
      for k, y in pairs(x) do x[k] = denull(y) end
    end
    return x
  end
  return denull(d).v
end
EH.roundtrip = roundtrip

function EH.fake_store()
  local st = {runs = {}, rows = {}, calls = {}}
  local function log(name, ...) st.calls[#st.calls + 1] = {name, ...} end
  function st.begin_run(t)
    assert(type(t) == "table" and type(t.suite) == "string", "begin_run needs {suite = ...}")
    local id = #st.runs + 1
    st.runs[id] = {id = id, suite = t.suite, begin = roundtrip(t), start_ns = id,
                   recorded = t.record or false, replay_of = t.replay_of, git_commit = t.git_commit,
                   config = t.config_json and EH.roundtrip(cjson.decode(t.config_json)) or {}}
    st.rows[id] = {}
    log("begin_run", id, t)
    return id
  end
  -- as the host: the *_json texts are stored as given, read back decoded
  function st.add_result(id, r)
    assert(st.rows[id], "add_result: no run " .. tostring(id))
    local row = {}
    for k, v in pairs(r) do
      local field = type(k) == "string" and k:match("^(.*)_json$")
      if field then
        assert(type(v) == "string", k .. " must be JSON text")
        row[field] = cjson.decode(v)
      elseif not (k == "input" or k == "expected" or k == "output" or k == "scores") then
        row[k] = v
      end
    end
    st.rows[id][#st.rows[id] + 1] = roundtrip(row)
    log("add_result", id, r)
  end
  function st.finish_run(id, f)
    assert(st.runs[id], "finish_run: no run " .. tostring(id))
    st.runs[id].finish = roundtrip(f)
    for k, v in pairs(f) do st.runs[id][k] = v end
    log("finish_run", id, f)
  end
  function st.find_run(suite, which, exclude)
    log("find_run", suite, which, exclude)
    if which == "last" then
      for id = #st.runs, 1, -1 do
        local r = st.runs[id]
        if r.suite == suite and id ~= exclude and r.finish then return id end
      end
      return nil, string.format('no earlier eval run of suite "%s"', suite)
    end
    local id = math.tointeger(tonumber(which))
    if id and st.runs[id] and st.runs[id].suite == suite then return id end
    return nil, string.format('no eval run %s of suite "%s"', tostring(which), suite)
  end
  -- finished runs of a suite, newest first, as the host lists them
  function st.list_runs(suite, limit)
    local out = {}
    for id = #st.runs, 1, -1 do
      local r = st.runs[id]
      if r.suite == suite and r.finish and (limit == nil or limit == 0 or #out < limit) then out[#out + 1] = r end
    end
    return out
  end
  function st.case_ids(id)
    local seen, out = {}, {}
    for _, r in ipairs(st.rows[id] or {}) do
      if not seen[r.case_id] then seen[r.case_id] = true; out[#out + 1] = r.case_id end
    end
    table.sort(out)
    return out
  end
  function st.results(id)
    local out = {}
    for i, r in ipairs(st.rows[id] or {}) do out[i] = roundtrip(r) end
    return out
  end
  function st.run(id) return st.runs[id] end
  return st
end

-- A writable stand-in for io.stdout/io.stderr.
function EH.capture()
  local c = {parts = {}}
  function c:write(...)
    for _, s in ipairs{...} do self.parts[#self.parts + 1] = tostring(s) end
    return self
  end
  function c:flush() return self end
  function c:text() return table.concat(self.parts) end
  return c
end

-- Calls eval.main(opts) with a store (a fake one unless given) and
-- captured output. Returns {code, out, err, store}.
function EH.main(opts, store)
  local E = require "moonspan.eval"
  store = store or EH.fake_store()
  local out, err = EH.capture(), EH.capture()
  local saved_store, saved_out, saved_err = moonspan.eval_store, E.stdout, E.stderr
  moonspan.eval_store, E.stdout, E.stderr = store, out, err
  local ok, code = pcall(E.main, opts)
  moonspan.eval_store, E.stdout, E.stderr = saved_store, saved_out, saved_err
  if not ok then error(code, 0) end
  return {code = code, out = out:text(), err = err:text(), store = store}
end

-- A minimal XML checker for the JUnit report: every tag closes in order,
-- attributes are quoted, only the five entities (and numeric ones) are
-- used. Returns the element tree {name, attrs, children, text} or raises.
function EH.parse_xml(s)
  local pos = 1
  s = s:gsub("^<%?xml.-%?>%s*", "")
  local root = {name = "#doc", children = {}}
  local stack = {root}
  local function unescape(t)
    local bad = t:gsub("&(#?%w+);", function(e)
      if e == "amp" or e == "lt" or e == "gt" or e == "quot" or e == "apos" or e:match("^#%d+$")
         or e:match("^#x%x+$") then return "" end
      error("unknown entity &" .. e .. ";")
    end)
    if bad:find("[&<]") then error("a raw & or < in text: " .. t) end
    local map = {amp = "&", lt = "<", gt = ">", quot = '"', apos = "'"}
    return (t:gsub("&(%w+);", map))
  end
  while pos <= #s do
    local lt = s:find("<", pos, true)
    local text = s:sub(pos, (lt or #s + 1) - 1)
    if text:find("%S") then
      local top = stack[#stack]
      top.text = (top.text or "") .. unescape(text)
    end
    if not lt then break end
    local gt = s:find(">", lt, true)
    assert(gt, "unterminated tag at " .. lt)
    local tag = s:sub(lt + 1, gt - 1)
    if tag:sub(1, 1) == "/" then
      local name = tag:sub(2)
      local top = table.remove(stack)
      if not top or top.name ~= name then
        error(string.format("</%s> closes <%s>", name, top and top.name or "nothing"))
      end
    else
      local self_closing = tag:sub(-1) == "/"
      if self_closing then tag = tag:sub(1, -2) end
      local name, rest = tag:match("^([%w_:%-]+)(.*)$")
      assert(name, "bad tag <" .. tag .. ">")
      local el = {name = name, attrs = {}, children = {}}
      local left = rest:gsub('%s+([%w_:%-]+)="([^"]*)"', function(k, v)
        assert(el.attrs[k] == nil, "duplicate attribute " .. k)
        el.attrs[k] = unescape(v)
        return ""
      end)
      assert(not left:find("%S"), "bad attributes in <" .. tag .. ">: " .. left)
      local parent = stack[#stack]
      parent.children[#parent.children + 1] = el
      if not self_closing then stack[#stack + 1] = el end
    end
    pos = gt + 1
  end
  assert(#stack == 1, "unclosed <" .. tostring(stack[#stack].name) .. ">")
  assert(#root.children == 1, "expected one root element")
  return root.children[1]
end

function EH.children(el, name)
  local out = {}
  for _, c in ipairs(el.children) do
    if c.name == name then out[#out + 1] = c end
  end
  return out
end

return EH
