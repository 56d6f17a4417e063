-- `moonspan ui` without a browser: the command line, the printed address,
-- the token, the answers for bad requests, and that it never writes the
-- store. The pages themselves are tested in Chromium (tests/ui).
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")
local q = H.q

local PIPELINE = [[
trace("answer", {user = "alice", tags = {"beta"}}, function()
  llm.call{model = "mock", messages = {{role = "user", content = "hi"}}}
end)
pcall(trace, "broken", function() error("no") end)
]]

-- Starts `moonspan ui` on a free loopback port; returns pid, base URL
-- (http://127.0.0.1:PORT) and the line it printed.
local function start_ui(db, extra, dir)
  local outf = dir .. "/ui.out"
  local pid = H.spawn("exec " .. q(H.bin) .. " --db " .. q(db) .. " ui --addr 127.0.0.1:0 " .. (extra or "")
    .. " >" .. q(outf) .. " 2>" .. q(dir .. "/ui.err"))
  local line = H.wait_match(outf, "^(moonspan ui: http://127%.0%.0%.1:%d+/%S*)\n", 10)
  assert(line, "moonspan ui printed no address: " .. (H.read(dir .. "/ui.err") or ""))
  return pid, line:match("(http://127%.0%.0%.1:%d+)"), line
end

-- curl: status, headers (lower-case names), body.
local function http(method, url, headers)
  local cmd = "curl -sS -D - --max-time 10 -X " .. method
  for _, h in ipairs(headers or {}) do cmd = cmd .. " -H " .. q(h) end
  local r = H.sh(cmd .. " " .. q(url))
  assert.are.equal(0, r.code, "curl " .. url .. ": " .. r.err)
  local head, body = r.out:match("^(.-)\r\n\r\n(.*)$")
  local hs = {}
  for name, v in head:gmatch("\n([^:\r\n]+): ([^\r\n]*)") do hs[name:lower()] = v end
  return {status = tonumber(head:match("^HTTP/%S+ (%d+)")), headers = hs, body = body}
end

describe("moonspan ui", function()
  local r0 = H.run_ok(PIPELINE)
  local db = r0.db

  it("prints its address with the port 0 took, answers, and exits 0 on SIGTERM", function()
    local dir = H.tmpdir("ui")
    local pid, base, line = start_ui(db, nil, dir)
    assert.truthy(line:match("^moonspan ui: http://127%.0%.0%.1:%d+/$"), line)
    assert.is_true(tonumber(base:match(":(%d+)$")) > 0)
    local r = http("GET", base .. "/api/meta")
    assert.are.equal(200, r.status)
    assert.are.equal("application/json", r.headers["content-type"])
    assert.are.equal("no-store", r.headers["cache-control"])
    assert.are.equal("nosniff", r.headers["x-content-type-options"])
    assert.truthy(r.headers["content-security-policy"]:find("default-src 'none'; script-src 'self'", 1, true))
    local meta = H.json(r.body)
    assert.are.equal(2, meta.traces)
    assert.are.equal(6, meta.schema_version)
    -- the page and its assets come from the binary
    local page = http("GET", base .. "/")
    assert.are.equal(200, page.status)
    assert.truthy(page.headers["content-type"]:find("text/html", 1, true))
    assert.truthy(page.body:find('src="/ui/app.js"', 1, true))
    assert.truthy(page.body:find('src="/ui/page_traces.js"', 1, true))
    local js = http("GET", base .. "/ui/app.js")
    assert.are.equal(200, js.status)
    assert.truthy(js.headers["content-type"]:find("text/javascript", 1, true))
    assert.truthy(js.headers["content-security-policy"])
    H.stop(pid, 10)
  end)

  it("exits 0 on SIGINT and on SIGTERM", function()
    for _, sig in ipairs({"INT", "TERM"}) do
      local dir = H.tmpdir("ui")
      -- a shell that waits for it keeps its exit status
      H.spawn("sh -c " .. q(q(H.bin) .. " --db " .. q(db) .. " ui --addr 127.0.0.1:0 >" .. q(dir .. "/ui.out")
        .. " & echo $! >" .. q(dir .. "/pid") .. "; wait $!; echo $? >" .. q(dir .. "/rc")))
      assert(H.wait_match(dir .. "/ui.out", "(http://127%.0%.0%.1:%d+/)", 10), "no address printed")
      local pid = H.read(dir .. "/pid"):match("%d+")
      os.execute("kill -" .. sig .. " " .. pid)
      assert(H.wait_file(dir .. "/rc", 10), "moonspan ui did not stop on SIG" .. sig)
      assert.are.equal("0", H.wait_match(dir .. "/rc", "(%d+)\n", 5), sig)
    end
  end)

  it("answers 404, 405 and 400 as JSON errors that name the fix", function()
    local dir = H.tmpdir("ui")
    local pid, base = start_ui(db, nil, dir)
    local r = http("GET", base .. "/api/nothing")
    assert.are.equal(404, r.status)
    assert.truthy(H.json(r.body).error:find("README", 1, true))
    assert.are.equal(404, http("GET", base .. "/ui/missing.js").status)
    for _, m in ipairs({"POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) do
      for _, path in ipairs({"/api/traces", "/", "/ui/app.js"}) do
        r = http(m, base .. path)
        assert.are.equal(405, r.status, m)
        assert.truthy(r.headers["content-security-policy"], m)
        -- the documented {"error"} a script can read, and what is allowed
        assert.are.equal("application/json", r.headers["content-type"], m .. " " .. path)
        assert.are.equal("GET", r.headers["allow"], m .. " " .. path)
        assert.truthy(H.json(r.body).error:find("every page and endpoint is GET", 1, true), m .. " " .. path)
      end
    end
    -- HEAD has no body to wait for: curl -I, not -X HEAD
    local head = H.sh("curl -sS -I --max-time 10 " .. q(base .. "/api/meta"))
    assert.truthy(head.out:match("^HTTP/%S+ 405"), head.out)
    assert.truthy(head.out:find("\nAllow: GET", 1, true), head.out)
    local bad = {
      {"sort=size", "use sort=start"}, {"limit=0", "limit '0' is not a whole number from 1 to 1000"},
      {"offset=-1", "offset '-1'"}, {"since=yesterday", "since 'yesterday' is not a duration"},
      {"run=abc", "run 'abc' is not a run id"}, {"evals=some", "use evals exclude, include or only"},
      {"attr=novalue", "has no '='"}, {"status=fine", "use status=ok, error"}, {"errors=yes", "errors=1"},
      {"name=%zz", "malformed"}, {"user=a%00b", "malformed"},
      {"since=1h&until=2h", "--until must be a shorter time ago than --since"},
    }
    for _, case in ipairs(bad) do
      r = http("GET", base .. "/api/traces?" .. case[1])
      assert.are.equal(400, r.status, case[1] .. ": " .. r.body)
      assert.truthy(H.json(r.body).error:find(case[2], 1, true), case[1] .. ": " .. r.body)
    end
    r = http("GET", base .. "/api/traces?run=999")
    assert.are.equal(404, r.status)
    assert.truthy(H.json(r.body).error:find("no run 999", 1, true))
    H.stop(pid, 10)
  end)

  it("/api/traces pages the selection like `moonspan traces --json`", function()
    local dir = H.tmpdir("ui")
    local pid, base = start_ui(db, nil, dir)
    local cli = H.json(H.moonspan({"traces", "--json"}, {db = db}).out)
    local r = H.json(http("GET", base .. "/api/traces").body)
    assert.are.equal(2, r.total)
    assert.are.equal(0, r.eval_traces_left_out)
    assert.are.same(cli, r.traces)
    r = H.json(http("GET", base .. "/api/traces?limit=1&offset=1").body)
    assert.are.equal(2, r.total)
    assert.are.same({cli[2]}, r.traces)
    r = H.json(http("GET", base .. "/api/traces?user=alice&tag=beta&status=ok").body)
    assert.are.equal(1, r.total)
    assert.are.equal("answer", r.traces[1].name)
    assert.are.equal(1, r.traces[1].run_id)
    r = H.json(http("GET", base .. "/api/traces?errors=1").body)
    assert.are.equal("broken", r.traces[1].name)
    assert.are.equal(1, r.total)
    H.stop(pid, 10)
  end)

  it("with --token, refuses requests without it (401), takes the header or ?token=", function()
    local dir = H.tmpdir("ui")
    local pid, base, line = start_ui(db, "--token s3cr3t-T0k", dir)
    assert.truthy(line:match("/%?token=s3cr3t%-T0k$"), line)
    for _, path in ipairs({"/", "/ui/app.js", "/api/meta", "/api/traces", "/nothing"}) do
      local r = http("GET", base .. path)
      assert.are.equal(401, r.status, path)
      assert.truthy(H.json(r.body).error:find("Authorization: Bearer", 1, true), path)
      assert.are.equal(401, http("GET", base .. path .. "?token=wrong").status, path)
      assert.are.equal(401, http("GET", base .. path, {"Authorization: Bearer s3cr3t-T0"}).status, path)
    end
    assert.are.equal(200, http("GET", base .. "/api/meta", {"Authorization: Bearer s3cr3t-T0k"}).status)
    assert.are.equal(200, http("GET", base .. "/api/traces?token=s3cr3t-T0k&limit=1").status)
    local page = http("GET", base .. "/?token=s3cr3t-T0k")
    assert.are.equal(200, page.status)
    -- the page's assets carry the token, so the browser can load them
    assert.truthy(page.body:find('src="/ui/app.js?token=s3cr3t-T0k"', 1, true))
    H.stop(pid, 10)
  end)

  it("never writes the store: its bytes and time stay as they were", function()
    local dir = H.tmpdir("ui")
    local before = H.sh("sha256sum " .. q(db) .. " && stat -c %Y.%s " .. q(db)).out
    local pid, base = start_ui(db, nil, dir)
    for _, path in ipairs({"/", "/api/meta", "/api/traces?sort=cost", "/api/traces?user=alice"}) do
      assert.are.equal(200, http("GET", base .. path).status, path)
    end
    http("POST", base .. "/api/traces")
    H.stop(pid, 10)
    assert.are.equal(before, H.sh("sha256sum " .. q(db) .. " && stat -c %Y.%s " .. q(db)).out)
    assert.is_false(H.exists(db .. "-wal") and #H.read(db .. "-wal") > 0)
  end)

  it("on a WAL store whose -wal and -shm are gone, makes them empty and changes nothing else", function()
    local dir = H.tmpdir("ui")
    local copy = dir .. "/wal.db"
    H.query(db, "PRAGMA wal_checkpoint(TRUNCATE)")
    assert(H.sh("cp " .. q(db) .. " " .. q(copy)).code == 0)
    assert.are.equal("wal", H.scalar(copy, "PRAGMA journal_mode"))
    os.remove(copy .. "-wal"); os.remove(copy .. "-shm")
    local before = H.sh("sha256sum " .. q(copy)).out:match("^%x+")
    local pid, base = start_ui(copy, nil, dir)
    assert.are.equal(200, http("GET", base .. "/api/traces").status)
    H.stop(pid, 10)
    assert.are.equal(before, H.sh("sha256sum " .. q(copy)).out:match("^%x+"))
    assert.is_true(H.exists(copy .. "-wal"), "SQLite's reader made the -wal it needs")
    assert.are.equal("", H.read(copy .. "-wal"))
  end)

  it("refuses bad usage with one line naming the fix (exit 2)", function()
    local dir = H.tmpdir("ui")
    H.usage_error(H.moonspan({"ui", "--addr", "0.0.0.0:0"}, {db = db}),
      "--addr 0.0.0.0:0 is not a loopback address")
    H.usage_error(H.moonspan({"ui", "--addr", "0.0.0.0:0"}, {db = db}), "add --token TOKEN")
    H.usage_error(H.moonspan({"ui", "--addr", "nowhere"}, {db = db}), "is not HOST:PORT")
    H.usage_error(H.moonspan({"ui", "--addr", "127.0.0.1:70000"}, {db = db}), "port must be a number")
    H.usage_error(H.moonspan({"ui", "--token", "has space"}, {db = db}), "--token must be 1 to 200 letters")
    H.usage_error(H.moonspan({"ui", "--token", ""}, {db = db}), "--token must be 1 to 200 letters")
    H.usage_error(H.moonspan({"ui", "--bogus"}, {db = db}), "--bogus")
    H.usage_error(H.moonspan({"ui", "--prices", "p.tsv"}, {db = db}), "drop --prices")
    local r = H.moonspan({"ui", "--addr", "127.0.0.1:0"}, {db = dir .. "/none.db"})
    assert.are.equal(2, r.code)
    assert.are.equal("", r.out)
    assert.truthy(r.err:find("^moonspan ui: "), r.err)
    assert.is_false(H.exists(dir .. "/none.db"))
    -- a port taken
    local pid, base = start_ui(db, nil, dir)
    local port = base:match(":(%d+)$")
    r = H.moonspan({"ui", "--addr", "127.0.0.1:" .. port}, {db = db})
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("cannot listen on 127.0.0.1:" .. port, 1, true), r.err)
    H.stop(pid, 10)
    r = H.moonspan({"ui", "--help"})
    assert.are.equal(0, r.code)
    assert.truthy(r.out:find("usage: moonspan ui", 1, true))
    assert.truthy(r.out:find("Exit status", 1, true))
  end)

  it("reads a version 5 store as it is, and leaves it at version 5", function()
    local dir = H.tmpdir("ui")
    local v5 = dir .. "/v5.db"
    assert(H.sh("cp " .. q(db) .. " " .. q(v5)).code == 0)
    H.query(v5, "ALTER TABLE traces DROP COLUMN session; ALTER TABLE traces DROP COLUMN user_id;"
                .. " ALTER TABLE traces DROP COLUMN tags; PRAGMA user_version = 5;")
    local pid, base = start_ui(v5, nil, dir)
    local meta = H.json(http("GET", base .. "/api/meta").body)
    assert.are.equal(5, meta.schema_version)
    local r = H.json(http("GET", base .. "/api/traces?user=alice&tag=beta").body)
    assert.are.equal(1, r.total)
    assert.are.same({"beta"}, r.traces[1].tags)
    assert.are.same(H.json(H.moonspan({"traces", "--json"}, {db = db}).out),
                    H.json(http("GET", base .. "/api/traces").body).traces)
    H.stop(pid, 10)
    assert.are.equal(5, H.scalar(v5, "PRAGMA user_version"))
  end)

  it("the CLI's --since and --until take UTC dates too", function()
    local all = H.json(H.moonspan({"traces", "--json", "--since", "2020-01-01"}, {db = db}).out)
    assert.are.equal(2, #all)
    local none = H.json(H.moonspan({"traces", "--json", "--until", "2020-01-01T00:00:00Z"}, {db = db}).out)
    assert.are.equal(0, #none)
    H.usage_error(H.moonspan({"traces", "--since", "2026-02-30"}, {db = db}), "or a UTC date such as 2026-11-01")
    -- past 2262 epoch nanoseconds overflow: refused, not read as a date in 1715 (found by fuzz target query)
    H.usage_error(H.moonspan({"traces", "--since", "2300-01-01"}, {db = db}), "or a UTC date such as 2026-11-01")
    H.usage_error(H.moonspan({"report", "--until", "9999-12-31T23:59:59Z"}, {db = db}), "or a UTC date")
  end)
end)
