-- Helpers shared by the specs. Load with
--   local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")
--
-- The specs run inside `moonspan test`, so span/trace/retry/llm are the
-- host's globals. What has to be checked in the database is checked by
-- running a child `moonspan run` on a small script (everything is flushed
-- when that process exits) and reading its database with the sqlite3 CLI.
--
-- Environment (set by tests/run.sh):
--   MOONSPAN_BIN       absolute path of the binary (default: build/moonspan)
--   MOONSPAN_TEST_TMP  a scratch folder (default: a new one under /tmp)
local cjson = require "cjson"

local H = {}

-- Single-quotes a string for sh.
function H.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
local q = H.q

local function capture(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  p:close()
  return out
end

H.root = (capture("pwd"):gsub("%s+$", ""))

local bin = os.getenv("MOONSPAN_BIN")
if not bin or bin == "" then bin = "build/moonspan" end
if bin:sub(1, 1) ~= "/" then bin = H.root .. "/" .. bin end
H.bin = bin

local base = os.getenv("MOONSPAN_TEST_TMP")
if not base or base == "" then
  base = os.tmpname()
  os.remove(base)
  assert(os.execute("mkdir -p " .. q(base)))
  -- removed when the Lua state closes (also on busted's os.exit)
  H._cleanup = setmetatable({}, {__gc = function() os.execute("rm -rf " .. q(base)) end})
end
H.tmp_base = base

local counter = 0
math.randomseed(os.time(), tonumber(tostring({}):match("0x(%x+)") or "0", 16))
-- A fresh, empty folder for one test.
function H.tmpdir(tag)
  counter = counter + 1
  local d = string.format("%s/%s-%d-%06d", base, (tag or "t"):gsub("[^%w_-]", "_"), counter,
                          math.random(0, 999999))
  assert(os.execute("mkdir -p " .. q(d)), "cannot create " .. d)
  return d
end

function H.write(path, content)
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

function H.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function H.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- Runs a shell command; returns {code = exit status (128+N for a signal),
-- out = stdout, err = stderr}.
function H.sh(cmd)
  local d = H.tmpdir("sh")
  local ok, how, code = os.execute("(" .. cmd .. ") >" .. q(d .. "/stdout") .. " 2>" .. q(d .. "/stderr")
                                   .. " </dev/null")
  if how == "signal" then code = 128 + code end
  return {code = code, ok = ok == true, out = H.read(d .. "/stdout") or "",
          err = H.read(d .. "/stderr") or "", cmd = cmd}
end

-- Runs the binary. args: a list of arguments (quoted here). opts:
--   db = path (passed as --db before the command), cwd = folder,
--   env = {NAME = value | false (unset)}, raw = string appended unquoted.
function H.moonspan(args, opts)
  opts = opts or {}
  local parts = {}
  if opts.cwd then parts[#parts + 1] = "cd " .. q(opts.cwd) .. " &&" end
  parts[#parts + 1] = "env"
  -- env takes its -u options before any NAME=VALUE
  for k, v in pairs(opts.env or {}) do
    if v == false then parts[#parts + 1] = "-u " .. k end
  end
  for k, v in pairs(opts.env or {}) do
    if v ~= false then parts[#parts + 1] = k .. "=" .. q(v) end
  end
  parts[#parts + 1] = q(opts.bin or H.bin)
  if opts.db then parts[#parts + 1] = "--db " .. q(opts.db) end
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  if opts.raw then parts[#parts + 1] = opts.raw end
  return H.sh(table.concat(parts, " "))
end

-- Writes `src` to a script in a fresh folder and runs it with
-- `moonspan --db DIR/x.db run --quiet SCRIPT ARGS...`. opts: args (list),
-- quiet (default true), name (script file name), db, prices, env,
-- run_args (options of `run` itself, e.g. {"--level", "debug"}).
-- Returns the result of H.sh plus .db, .dir and .script.
function H.run_script(src, opts)
  opts = opts or {}
  local dir = opts.dir or H.tmpdir(opts.name or "run")
  local script = dir .. "/" .. (opts.name or "script") .. ".lua"
  H.write(script, src)
  local db = opts.db or (dir .. "/x.db")
  local args = {"run"}
  if opts.quiet ~= false then args[#args + 1] = "--quiet" end
  if opts.prices then
    args[#args + 1] = "--prices"
    args[#args + 1] = opts.prices
  end
  for _, a in ipairs(opts.run_args or {}) do args[#args + 1] = a end
  args[#args + 1] = script
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
  local r = H.moonspan(args, {db = db, env = opts.env, cwd = opts.cwd})
  r.db, r.dir, r.script = db, dir, script
  return r
end

-- Runs a moonspan command on a script in the background, and acts on it
-- from the shell once the script is ready. The script sees READY (a path)
-- and ready() (creates it); `then_sh` runs once it exists, with $pid the
-- moonspan process (e.g. "sleep 0.1; kill -INT $pid"); then the process is
-- waited for. opts: name, db, env, cmd (default {"run", "--quiet"}).
-- Returns the result of H.sh plus .status (the exit status, 128+N for a
-- signal), .db, .dir, .script and .seconds (from start to exit).
function H.run_bg(src, then_sh, opts)
  opts = opts or {}
  local dir = H.tmpdir(opts.name or "bg")
  local ready = dir .. "/ready"
  local script = H.write(dir .. "/" .. (opts.name or "bg") .. ".lua", string.format(
    "READY = %q\nfunction ready() io.open(READY, 'w'):close() end\n", ready) .. src)
  local db = opts.db or (dir .. "/x.db")
  local env = {}
  for k, v in pairs(opts.env or {}) do env[#env + 1] = k .. "=" .. q(v) end
  local cmd = {}
  for _, a in ipairs(opts.cmd or {"run", "--quiet"}) do cmd[#cmd + 1] = q(a) end
  local t0 = moonspan.now_ms()
  local r = H.sh(string.format(
    "env %s %s --db %s %s %s & pid=$!; i=0; " ..
    "while [ ! -e %s ] && [ $i -lt 1000 ]; do sleep 0.02; i=$((i+1)); done; %s; wait $pid; echo \"status=$?\"",
    table.concat(env, " "), q(H.bin), q(db), table.concat(cmd, " "), q(script), q(ready), then_sh))
  r.seconds = (moonspan.now_ms() - t0) / 1000
  r.status = tonumber(r.out:match("status=(%d+)%s*$"))
  r.db, r.dir, r.script = db, dir, script
  return r
end

-- Starts a shell command in the background and returns its pid (the
-- command is exec'ed, so the pid is the command's own).
function H.spawn(cmd)
  local p = assert(io.popen("(" .. cmd .. ") >/dev/null 2>&1 </dev/null & echo $!", "r"))
  local pid = tonumber(p:read("l"))
  p:close()
  return pid
end

-- Waits up to `seconds` for process `pid` to be gone; true when it is.
function H.wait_gone(pid, seconds)
  local deadline = moonspan.now_ms() + seconds * 1000
  while moonspan.now_ms() < deadline do
    local f = io.open("/proc/" .. pid .. "/stat", "r")
    if not f then return true end
    local stat = f:read("a")
    f:close()
    if stat:match("^%d+ %b() Z") then return true end -- a zombie has exited
    moonspan.sleep_ms(20)
  end
  return false
end

-- Waits up to `seconds` for `path` to exist.
function H.wait_file(path, seconds)
  local deadline = moonspan.now_ms() + seconds * 1000
  while moonspan.now_ms() < deadline do
    if H.exists(path) then return true end
    moonspan.sleep_ms(10)
  end
  return false
end

-- Waits up to `seconds` for the text of file `path` to match `pattern`
-- (a server's line saying where it listens); returns the first capture,
-- or nil.
function H.wait_match(path, pattern, seconds)
  local deadline = moonspan.now_ms() + seconds * 1000
  while true do
    local m = (H.read(path) or ""):match(pattern)
    if m or moonspan.now_ms() >= deadline then return m end
    moonspan.sleep_ms(20)
  end
end

-- Sends SIGTERM to process `pid` and fails the test unless it is gone
-- within `seconds`.
function H.stop(pid, seconds)
  os.execute("kill -TERM " .. pid .. " 2>/dev/null")
  assert(H.wait_gone(pid, seconds), "process " .. pid .. " did not stop on SIGTERM")
end

-- The names of the `secrets` (name -> planted text) that `text` holds,
-- sorted: {} when none leaked.
function H.leaks(secrets, text)
  local found = {}
  for name, s in pairs(secrets) do
    if text:find(s, 1, true) then found[#found + 1] = name end
  end
  table.sort(found)
  return found
end

-- Fails the test unless result `r` (of H.moonspan) is a usage error:
-- exit 2, nothing on stdout, one line on stderr holding `msg`.
function H.usage_error(r, msg)
  assert(r.code == 2, "exit " .. tostring(r.code) .. ", not 2: " .. r.out .. r.err)
  assert(r.out == "", "output on a usage error: " .. r.out)
  assert(r.err:find(msg, 1, true), "stderr does not say '" .. msg .. "': " .. r.err)
  assert(select(2, r.err:gsub("\n", "")) == 1, "not one line: " .. r.err)
end

-- Like run_script, but fails the test with the script's stderr unless it exited 0.
function H.run_ok(src, opts)
  local r = H.run_script(src, opts)
  if r.code ~= 0 then
    error(string.format("script exited %s, expected 0\n--- stdout\n%s\n--- stderr\n%s", tostring(r.code),
                        r.out, r.err), 2)
  end
  return r
end

local function denull(v)
  if v == cjson.null then return nil end
  if type(v) == "table" then
    for k, x in pairs(v) do v[k] = denull(x) end
  end
  return v
end
H.denull = denull

-- The samples of a Prometheus text exposition: "name{labels}" -> number
-- (+Inf as math.huge; a value that is no number stays text).
function H.prom_samples(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do
    if line:sub(1, 1) ~= "#" then
      local key, v = line:match("^(.-) (%S+)$")
      out[key] = tonumber(v) or (v == "+Inf" and math.huge) or v
    end
  end
  return out
end

function H.json(s)
  return denull(cjson.decode(s))
end

-- The loadable extension next to the binary: the stock sqlite3 CLI gets
-- the spans and span_events tables from it, as a user's would.
H.sqlext = bin:gsub("/[^/]*$", "") .. "/moonspan_sql"

-- Rows of a query as a list of tables (SQL NULL becomes nil), run by the
-- sqlite3 CLI with moonspan's extension loaded.
function H.query(db, sql)
  local r = H.sh("sqlite3 -cmd " .. q(".load " .. H.sqlext) .. " -json " .. q(db) .. " " .. q(sql))
  if r.code ~= 0 then
    error("sqlite3 failed (" .. tostring(r.code) .. "): " .. r.err .. "\nSQL: " .. sql, 2)
  end
  if r.out:match("^%s*$") then return {} end
  return denull(cjson.decode(r.out))
end

-- The single value of a one-row, one-column query.
function H.scalar(db, sql)
  local rows = H.query(db, sql)
  assert(#rows == 1, "expected one row from: " .. sql .. ", got " .. #rows)
  local _, v = next(rows[1])
  return v
end

local SPAN_COLS = [[
  s.rowid AS rowid, s.name, s.kind, s.start_ns, s.duration_ns, s.status, s.error_own, s.error_type,
  s.error_message, s.error_traceback, s.attrs, s.provider, s.model, s.input_tokens,
  s.output_tokens, s.cache_read_tokens, s.cache_write_tokens, s.usage_estimated, s.cost_usd,
  s.retries, s.retry_succeeded, s.ttft_ns, t.trace_id, t.name AS trace_name,
  printf('%016x', s.span_id) AS id,
  CASE WHEN s.parent_id IS NULL THEN NULL ELSE printf('%016x', s.parent_id) END AS parent]]

-- The spans of the trace(s) named `trace_name` in rowid order, with `id`
-- and `parent` as 16-hex strings. Also indexed by span name (first wins).
function H.spans(db, trace_name)
  local rows = H.query(db, "SELECT " .. SPAN_COLS .. " FROM spans s JOIN traces t ON s.trace_row = t.id "
                           .. "WHERE t.name = '" .. trace_name:gsub("'", "''") .. "' ORDER BY s.rowid")
  local by = {}
  for _, r in ipairs(rows) do
    if by[r.name] == nil then by[r.name] = r end
  end
  return rows, by
end

function H.trace_row(db, name)
  local rows = H.query(db, "SELECT * FROM traces WHERE name = '" .. name:gsub("'", "''") .. "'")
  assert(#rows == 1, "expected one trace named " .. name .. ", found " .. #rows)
  return rows[1]
end

-- Events of the trace named `trace_name`, with span_id as 16 hex.
function H.events(db, trace_name)
  return H.query(db, "SELECT e.name, e.time_ns, e.attrs, printf('%016x', e.span_id) AS span "
                     .. "FROM span_events e JOIN traces t ON e.trace_row = t.id WHERE t.name = '"
                     .. trace_name:gsub("'", "''") .. "' ORDER BY e.rowid")
end

-- Number of lines in s.
function H.lines(s)
  local n = 0
  for _ in s:gmatch("[^\n]*\n") do n = n + 1 end
  if s ~= "" and s:sub(-1) ~= "\n" then n = n + 1 end
  return n
end

function H.is_root()
  return capture("id -u"):match("^%s*0%s*$") ~= nil
end

-- --- reference values, worked out here to check moonspan's own ---------------

-- The p-th percentile (0-100) of a sorted list, by linear interpolation
-- between closest ranks (numpy's default, the definition moonspan states).
function H.pct(sorted, p)
  local n = #sorted
  local h = (n - 1) * p / 100
  local lo = math.floor(h)
  local a, b = sorted[lo + 1], sorted[math.min(lo + 2, n)]
  return a + (b - a) * (h - lo)
end

-- Wilson's score interval of k successes in n, from its formula; z
-- defaults to the 0.975 normal quantile (a 95% interval). Returns lo, hi.
function H.wilson(k, n, z)
  z = z or 1.959963984540054
  local p = k / n
  local den = 1 + z * z / n
  local mid = (p + z * z / (2 * n)) / den
  local half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
  return math.max(0, mid - half), math.min(1, mid + half)
end

-- Raises unless `got` is a number within tol of expected (default: 1e-9
-- absolute plus 1e-9 relative); `what` names it in the message. (Plain
-- error: busted's assert belongs to the spec files, not to this one.)
function H.close_to(expected, got, what, tol)
  if type(got) ~= "number" then
    error(string.format("%s: expected a number, got %s", what or "value", tostring(got)), 2)
  end
  tol = tol or (1e-9 + 1e-9 * math.abs(expected))
  if not (math.abs(expected - got) <= tol) then
    error(string.format("%s: expected %.12g, got %.12g", what or "value", expected, got), 2)
  end
end

-- Memoizes a function of no arguments (to build a database once per file).
function H.once(fn)
  local done, value
  return function()
    if not done then
      value = fn()
      done = true
    end
    return value
  end
end

return H
