-- moonspan.eval_dataset: an eval suite's cases: its JSONL dataset or
-- inline list read into case tables with ids, and --filter's globs.

local cjson = require "cjson"
local scorers = require "moonspan.scorers"

local M = {}

-- --- datasets ---------------------------------------------------------------

-- JSON numbers come back from cjson as floats; ids and counts read better
-- as integers, and nulls are plain nils in a case.
local function normalise_json(v)
  if v == cjson.null then return nil end
  if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then
    return math.tointeger(v)
  end
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = normalise_json(x) end
  end
  return v
end
M.normalise_json = normalise_json

local function case_id_of(v)
  if type(v) == "string" and v ~= "" then return v end
  if math.type(v) == "integer" then return tostring(v) end
  if type(v) == "number" then return tostring(v) end
  return nil
end

-- Parses JSONL text into cases. `label` names the file in messages.
-- Returns cases, derived (the ids made from line numbers), or nil and a
-- message "label:line: ...".
function M.parse_jsonl(text, label)
  text = text:gsub("^\239\187\191", "") -- a UTF-8 byte order mark
  local cases, derived, seen = {}, {}, {}
  local lineno = 0
  for line in (text:sub(-1) == "\n" and text or text .. "\n"):gmatch("([^\n]*)\n") do
    lineno = lineno + 1
    line = line:gsub("\r$", "")
    if not line:match("^%s*$") then
      local ok, v = pcall(cjson.decode, line)
      if not ok then
        return nil, string.format("%s:%d: not JSON (%s)", label, lineno, tostring(v))
      end
      if type(v) ~= "table" or line:match("^%s*%[") then
        return nil, string.format('%s:%d: expected a JSON object such as {"id": "paris", "input": "...", '
                                  .. '"expected": "..."}, got %s', label, lineno, scorers.short(line, 40))
      end
      v = normalise_json(v)
      local id
      if v.id == nil then
        id = "line-" .. lineno
        derived[#derived + 1] = id
      else
        id = case_id_of(v.id)
        if not id then
          return nil, string.format("%s:%d: id must be a non-empty string or a number, got %s", label, lineno,
                                    scorers.short(v.id))
        end
      end
      if seen[id] then
        return nil, string.format('%s:%d: duplicate case id "%s" (also on line %d)', label, lineno, id, seen[id])
      end
      seen[id] = lineno
      v.id = id
      cases[#cases + 1] = v
    end
  end
  return cases, derived
end

-- An inline list of cases: tables, copied, ids derived from positions
-- ("case-3") where missing. Returns cases, derived or nil and a message.
function M.inline_cases(list, label)
  local cases, derived, seen = {}, {}, {}
  for i = 1, #list do
    local c = list[i]
    if type(c) ~= "table" then
      return nil, string.format("%s: dataset[%d] is a %s; each case is a table like {id = ..., input = ..., "
                                .. "expected = ...}", label, i, type(c))
    end
    local copy = {}
    for k, v in pairs(c) do copy[k] = v end
    local id
    if copy.id == nil then
      id = "case-" .. i
      derived[#derived + 1] = id
    else
      id = case_id_of(copy.id)
      if not id then
        return nil, string.format("%s: dataset[%d].id must be a non-empty string or a number", label, i)
      end
    end
    if seen[id] then
      return nil, string.format('%s: dataset[%d] repeats case id "%s" (dataset[%d])', label, i, id, seen[id])
    end
    seen[id] = i
    copy.id = id
    cases[i] = copy
  end
  return cases, derived
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function dir_of(path)
  return path:match("^(.*)/[^/]*$") or "."
end
M.exists, M.dir_of = exists, dir_of

-- Where a dataset named in a suite is: next to the suite file, else from
-- the current folder (absolute paths as they are).
function M.find_dataset(name, suite_file)
  if name:sub(1, 1) == "/" then return exists(name) and name or nil end
  local d = dir_of(suite_file or "")
  if suite_file and d ~= "." then
    local p = d .. "/" .. name
    if exists(p) then return p end
  end
  if exists(name) then return name end
  return nil
end

-- The cases of suite S. notify(msg) receives the one notice about derived
-- ids. Returns the cases or nil and a message naming the file and line.
function M.load_cases(S, notify)
  local where = string.format("%s:%d", S.file, S.line)
  local cases, derived, label
  if type(S.dataset) == "table" then
    label = where .. ': suite "' .. S.name .. '"'
    cases, derived = M.inline_cases(S.dataset, label)
    if not cases then return nil, derived end
    if #derived > 0 then
      notify(string.format("%s: %d inline case%s without an id; using %s as id%s", label, #derived,
                           #derived == 1 and "" or "s", M.list_ids(derived, 5), #derived == 1 and "" or "s"))
    end
  else
    local path = M.find_dataset(S.dataset, S.file)
    if not path then
      return nil, string.format('%s: suite "%s": dataset file "%s" not found (looked next to %s and in the '
                                .. "current folder)", where, S.name, S.dataset, S.file)
    end
    local f, err = io.open(path, "rb")
    local text = f and f:read("a")
    if f then f:close() end
    if not text then
      return nil, string.format('%s: suite "%s": cannot read dataset %s: %s', where, S.name, path,
                                tostring(err or "is it a folder?"))
    end
    cases, derived = M.parse_jsonl(text, path)
    if not cases then return nil, derived end
    if #cases == 0 then
      return nil, string.format('%s: suite "%s": dataset %s has no cases (no JSON lines)', where, S.name, path)
    end
    if #derived > 0 then
      notify(string.format('%s: %d case%s without an "id"; ids derived from line numbers: %s', path, #derived,
                           #derived == 1 and "" or "s", M.list_ids(derived, 5)))
    end
  end
  return cases
end

function M.list_ids(ids, max)
  local shown = {}
  for i = 1, math.min(#ids, max or #ids) do shown[i] = ids[i] end
  local s = table.concat(shown, ", ")
  if max and #ids > max then s = s .. string.format(", ... (%d more)", #ids - max) end
  return s
end

-- --- filter -----------------------------------------------------------------

-- A glob (* any run of characters, ? one character) as an anchored Lua
-- pattern; every other character is literal.
function M.glob_pattern(glob)
  local out = {"^"}
  for c in glob:gmatch(".") do
    if c == "*" then
      out[#out + 1] = ".*"
    elseif c == "?" then
      out[#out + 1] = "."
    elseif c:match("%p") then
      out[#out + 1] = "%" .. c
    else
      out[#out + 1] = c
    end
  end
  out[#out + 1] = "$"
  return table.concat(out)
end

function M.glob_match(glob, s)
  return s:find(M.glob_pattern(glob)) ~= nil
end

function M.filter_cases(cases, glob)
  if not glob then return cases end
  local pat = M.glob_pattern(glob)
  local out = {}
  for _, c in ipairs(cases) do
    if c.id:find(pat) then out[#out + 1] = c end
  end
  return out
end


return M
