-- `run --export otlp[=URL]` and `eval --export`: the run's traces sent
-- while it runs, from a background thread, to a loopback OTLP/HTTP
-- receiver (tests/otel/receiver.js, the official OTLP schema), and
-- checked against the store; a receiver that is down, answers 503, or
-- hangs; the variables that turn it off or on; bad values.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")
local O = dofile(H.root .. "/tests/spec/otlp_helpers.lua")

-- The script sees the receiver's log as arg[1] and waits (up to 5 s) for
-- a request answered 200 before it goes on: the first traces were sent
-- while it ran, not at exit. It also records a trace long enough to be
-- written in parts while open.
local LIVE = [[
local log = arg[1]
local function received()
  local f = io.open(log)
  if not f then return false end
  local s = f:read("a")
  f:close()
  return s:find('"status":200', 1, true) ~= nil
end
trace("first", function() span("a", function() span("b", function() end) end) end)
trace("long", function()
  for i = 1, 5 do span("step", function() moonspan.sleep_ms(250) end) end
end)
local waited = 0
while not received() and waited < 5000 do
  moonspan.sleep_ms(20)
  waited = waited + 20
end
print(received() and "seen live" or "not seen live")
for i = 1, 3 do trace("short", function() span("x", function() end) end) end
]]

local FAST = {OTEL_BSP_SCHEDULE_DELAY = "100"}

local function with(env, more)
  local e = {}
  for k, v in pairs(env) do e[k] = v end
  for k, v in pairs(more or {}) do e[k] = v end
  return e
end

describe("run --export otlp", function()
  it("sends every span while the script runs, with the stored ids, parents and times (protobuf)", function()
    local rx = O.receiver("200")
    local r = H.run_script(LIVE, {run_args = {"--export", "otlp=" .. rx.url}, args = {rx.log}, env = FAST})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    assert.matches("seen live", r.out, 1, true)
    assert.is_true(H.scalar(r.db, "SELECT parts FROM traces WHERE name = 'long'") > 0,
                   "the long trace was not written in parts: the test does not cover open rows")
    local reqs = rx.requests()
    assert.is_true(#reqs >= 2, "one request at exit only: " .. #reqs)
    for _, req in ipairs(reqs) do
      assert.are.equal("/v1/traces", req.path)
      assert.are.equal("application/x-protobuf", req.contentType)
      assert.are.equal("gzip", req.contentEncoding)
      assert.is_nil(req.error)
    end
    local got, n = rx.spans()
    local stored = O.same_as_store(r.db, got, n)
    assert.matches(string.format("exported %d of %d spans (5 traces) to %s/v1/traces (http/protobuf, gzip)",
                                 stored, stored, rx.url), r.err, 1, true)
    assert.is_nil(r.err:find("not sent", 1, true), r.err)
  end)

  it("sends OTLP/JSON when the OTEL_* variables say so, to their endpoint", function()
    local rx = O.receiver("200")
    local r = H.run_script(LIVE, {run_args = {"--export", "otlp"}, args = {rx.log},
                                  env = with(FAST, {OTEL_EXPORTER_OTLP_ENDPOINT = rx.url,
                                                    OTEL_EXPORTER_OTLP_PROTOCOL = "http/json",
                                                    OTEL_EXPORTER_OTLP_COMPRESSION = "none",
                                                    OTEL_SERVICE_NAME = "live-svc"})})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    assert.matches("seen live", r.out, 1, true)
    local reqs = rx.requests()
    assert.are.equal("application/json", reqs[1].contentType)
    assert.are.equal("", reqs[1].contentEncoding)
    assert.are.equal("live-svc", reqs[1].body[1].resource["service.name"])
    local got, n = rx.spans()
    O.same_as_store(r.db, got, n)
    assert.matches("(http/json)", r.err, 1, true)
  end)

  it("turns on with OTEL_TRACES_EXPORTER=otlp and no flag (not for moonspan test)", function()
    local rx = O.receiver("200")
    local env = {OTEL_TRACES_EXPORTER = "otlp", OTEL_EXPORTER_OTLP_ENDPOINT = rx.url}
    local r = H.run_script('trace("t", function() span("s", function() end) end)', {env = env})
    assert.are.equal(0, r.code, r.err)
    local dir = H.tmpdir("busted")
    H.write(dir .. "/one_spec.lua", 'describe("d", function() it("i", function()'
                                    .. ' trace("t", function() end) end) end)')
    local t = H.moonspan({"test", dir .. "/one_spec.lua"}, {db = dir .. "/x.db", env = env})
    rx.stop()
    assert.are.equal(0, t.code, t.out .. t.err)
    assert.is_nil(t.err:find("exported", 1, true), t.err)
    local got, n = rx.spans()
    assert.are.equal(2, O.same_as_store(r.db, got, n)) -- the run's spans, none of the test's
  end)

  it("wakes before the schedule once a batch of ended spans was written", function()
    local rx = O.receiver("200")
    local src = LIVE:gsub('trace%("long".-\nend%)\n', 'for i = 1, 4 do trace("more", function()'
                          .. ' span("a", function() end) span("b", function() end) end) end\n')
    assert.matches('"more"', src, 1, true)
    local r = H.run_script(src, {run_args = {"--export", "otlp=" .. rx.url}, args = {rx.log},
                                 env = {OTEL_BSP_SCHEDULE_DELAY = "60000", OTEL_BSP_MAX_EXPORT_BATCH_SIZE = "10"}})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    assert.matches("seen live", r.out, 1, true) -- 60 s would have been too late
    local got, n = rx.spans()
    O.same_as_store(r.db, got, n)
    for _, req in ipairs(rx.requests()) do
      local k = 0
      for _, rs in ipairs(req.body) do for _, ss in ipairs(rs.scopeSpans) do k = k + #ss.spans end end
      assert.is_true(k <= 10, "a request of " .. k .. " spans")
    end
  end)

  it("leaves the exit status to the script when the receiver is down, counts what was not sent,"
     .. " and names the command that sends it", function()
    -- a port nobody listens on: a receiver's, once it has stopped
    local gone = O.receiver("200")
    local port = gone.port
    gone.stop()
    local r = H.run_script('trace("t1", function() span("s", function() end) end)\n'
                           .. 'trace("t2", function() span("s", function() end) end)\n'
                           .. 'os.exit(3)', {run_args = {"--export", "otlp=http://127.0.0.1:" .. port}, env = FAST})
    assert.are.equal(3, r.code, r.err)
    local url = "http://127.0.0.1:" .. port .. "/v1/traces"
    assert.matches("exported 0 of 4 spans (2 traces) to " .. url, r.err, 1, true)
    assert.matches("4 not sent (last error: ", r.err, 1, true)
    local cmd = r.err:match("`(moonspan export otlp [^`]+)` sends them again")
    assert.is_not_nil(cmd, r.err)
    assert.are.equal("moonspan export otlp " .. url .. " --run 1 --db " .. r.db, cmd)
    -- the command, once a receiver listens there, sends them all
    local rx = O.receiver("200", port)
    local e = H.sh(H.q(H.bin) .. cmd:sub(#"moonspan" + 1))
    rx.stop()
    assert.are.equal(0, e.code, e.err)
    local got, n = rx.spans()
    assert.are.equal(4, O.same_as_store(r.db, got, n))
  end)

  it("names a command that works as pasted into a shell, whatever the store's path and the URL hold", function()
    local gone = O.receiver("200")
    local port = gone.port
    gone.stop()
    local dir = H.tmpdir("paste") .. "/it's a $HOME (x)"
    assert(os.execute("mkdir -p " .. H.q(dir)))
    local db = dir .. "/s.db"
    local url = "http://127.0.0.1:" .. port .. "/a(b)&c"
    local r = H.run_script('trace("t", function() span("s", function() end) end)',
                           {db = db, run_args = {"--export", "otlp=" .. url}, env = {OTEL_BSP_EXPORT_TIMEOUT = "300"}})
    assert.are.equal(0, r.code, r.err)
    local cmd = r.err:match("`(moonspan export otlp [^`]+)` sends them again")
    assert.is_not_nil(cmd, r.err)
    assert.are.equal("moonspan export otlp '" .. url .. "/v1/traces' --run 1 --db '" .. dir:gsub("'", "'\\''")
                     .. "/s.db'", cmd)
    local rx = O.receiver("200", port)
    local e = H.sh(H.q(H.bin) .. cmd:sub(#"moonspan" + 1))
    rx.stop()
    assert.are.equal(0, e.code, e.err)
    local got, n = rx.spans()
    assert.are.equal(2, O.same_as_store(db, got, n))
    assert.are.equal("/a(b)&c/v1/traces", rx.requests()[1].path)
  end)

  it("says the first failure once while the script runs, and counts the rest at exit", function()
    local rx = O.receiver("400")
    -- three traces a few wakes apart: three requests fail (400 is not retried)
    local r = H.run_script('for i = 1, 3 do trace("t", function() span("s", function() end) end)'
                           .. ' moonspan.sleep_ms(400) end', {run_args = {"--export", "otlp=" .. rx.url}, env = FAST})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(3, #rx.requests())
    local _, notices = r.err:gsub("moonspan run: live export: ", "")
    assert.are.equal(1, notices, r.err)
    assert.matches("moonspan run: live export: 2 spans not sent after 1 attempt: HTTP 400: status 400 from the"
                   .. " test receiver; the script goes on", r.err, 1, true)
    assert.matches("exported 0 of 6 spans (3 traces)", r.err, 1, true)
    assert.matches("6 not sent (last error: 2 spans not sent after 1 attempt: HTTP 400", r.err, 1, true)
    assert.are.equal(2, select(2, r.err:gsub("\n", "")), r.err) -- the notice and the exit line
  end)

  it("says the first partial success once while the script runs, and counts every rejected span at exit", function()
    local rx = O.receiver("partial:1")
    -- three traces a few wakes apart: three requests, each with one span rejected
    local r = H.run_script('for i = 1, 3 do trace("t", function() span("s", function() end) end)'
                           .. ' moonspan.sleep_ms(400) end', {run_args = {"--export", "otlp=" .. rx.url}, env = FAST})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(3, #rx.requests())
    local _, said = r.err:gsub("partial success; not retried", "")
    assert.are.equal(1, said, r.err)
    assert.matches("moonspan run: the receiver accepted 1 of 2 spans and rejected 1 (partial success; not retried;"
                   .. " later ones are counted at exit): 1 spans too old\n", r.err, 1, true)
    assert.matches("exported 3 of 6 spans (3 traces) to " .. rx.url .. "/v1/traces (http/protobuf, gzip) in 3 requests;"
                   .. " 3 not sent (3 rejected by the receiver)", r.err, 1, true)
    assert.are.equal(2, select(2, r.err:gsub("\n", "")), r.err) -- that line and the exit line
  end)

  it("retries a 503 after its Retry-After, and counts the retry", function()
    local rx = O.receiver("503:1,200")
    local r = H.run_script('trace("t", function() span("s", function() end) end)',
                           {run_args = {"--export", "otlp=" .. rx.url}})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    local reqs = rx.requests()
    assert.are.equal(2, #reqs)
    assert.are.equal(503, reqs[1].status)
    assert.are.equal(200, reqs[2].status)
    local got, n = rx.spans()
    assert.are.equal(2, O.same_as_store(r.db, got, n))
    assert.matches("exported 2 of 2 spans (1 trace) to " .. rx.url .. "/v1/traces (http/protobuf, gzip)"
                   .. " in 1 request, 1 retry\n", r.err, 1, true)
  end)

  it("never slows the script when the receiver hangs, and ends by the export deadline", function()
    local rx = O.receiver("hang")
    -- once the exporter is stuck in a request, the script records 20000
    -- spans in 200 traces and times itself
    local src = [[
      local log = arg[1]
      local function hanging()
        local f = io.open(log)
        if not f then return false end
        local s = f:read("a")
        f:close()
        return s:find('"status":0', 1, true) ~= nil
      end
      trace("first", function() span("a", function() end) end)
      local waited = 0
      while not hanging() and waited < 5000 do
        moonspan.sleep_ms(20)
        waited = waited + 20
      end
      local t0 = moonspan.now_ms()
      for i = 1, 200 do
        trace("busy", function()
          for j = 1, 99 do span("s", function() end) end
        end)
      end
      moonspan.flush()
      print(string.format("elapsed_ms=%.0f waited_ms=%.0f", moonspan.now_ms() - t0, waited))
    ]]
    local t0 = moonspan.now_ms()
    local r = H.run_script(src, {run_args = {"--export", "otlp=" .. rx.url}, args = {rx.log},
                                 env = with(FAST, {OTEL_BSP_EXPORT_TIMEOUT = "2000",
                                                   OTEL_EXPORTER_OTLP_TIMEOUT = "60000"})})
    local seconds = (moonspan.now_ms() - t0) / 1000
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    local elapsed, waited = r.out:match("elapsed_ms=(%d+) waited_ms=(%d+)")
    assert.is_not_nil(elapsed, r.out .. r.err)
    assert.is_true(tonumber(waited) < 5000, "the exporter never sent a request")
    -- the request hangs for 60 s; the script's own work takes well under a second
    assert.is_true(tonumber(elapsed) < 1000, "the script took " .. elapsed .. " ms")
    assert.are.equal(20002, H.scalar(r.db, "SELECT sum(span_count) FROM traces"))
    -- the end waits 2 s for the export, about 1 s more to cut the request
    assert.is_true(seconds < 6, "the run took " .. seconds .. " s")
    assert.matches("not sent (last error: ", r.err, 1, true)
    assert.matches("the export deadline passed", r.err, 1, true)
    assert.matches("sends them again", r.err, 1, true)
  end)

  it("holds no read snapshot while a request hangs: the WAL is checkpointed to nothing meanwhile", function()
    local rx = O.receiver("hang")
    -- once the exporter is stuck in its first request, the script writes
    -- 200 traces (about 3 MB), lets the writer go idle, and asks the
    -- sqlite3 CLI for a TRUNCATE checkpoint, which a read transaction
    -- left open on an older snapshot makes busy (before: "1|...")
    local src = [[
      local log, db = arg[1], arg[2]
      local function hanging()
        local f = io.open(log)
        if not f then return false end
        local s = f:read("a")
        f:close()
        return s:find('"status":0', 1, true) ~= nil
      end
      local function sh(cmd)
        local p = io.popen(cmd)
        local s = p:read("a")
        p:close()
        return (s:gsub("%s+$", ""))
      end
      trace("first", function() span("a", function() end) end)
      local waited = 0
      while not hanging() and waited < 5000 do
        moonspan.sleep_ms(20)
        waited = waited + 20
      end
      local pad = string.rep("x", 300)
      for i = 1, 200 do
        trace("busy", function()
          for j = 1, 50 do span("s", {pad = pad}, function() end) end
        end)
      end
      moonspan.flush()
      moonspan.sleep_ms(500) -- the writer's own checkpoint, once idle, is done
      local grown = sh("stat -c %s " .. db .. "-wal")
      local requests = select(2, io.open(log):read("a"):gsub("\n", ""))
      print("hanging=" .. tostring(hanging()) .. " requests=" .. requests)
      print("checkpoint=" .. sh("sqlite3 -cmd '.timeout 3000' " .. db .. " 'PRAGMA wal_checkpoint(TRUNCATE)'"))
      print("wal=" .. sh("stat -c %s " .. db .. "-wal") .. " before=" .. grown)
    ]]
    local dir = H.tmpdir("wal")
    local db = dir .. "/x.db"
    local r = H.run_script(src, {dir = dir, db = db, run_args = {"--export", "otlp=" .. rx.url},
                                 args = {rx.log, db},
                                 env = with(FAST, {OTEL_BSP_EXPORT_TIMEOUT = "1000",
                                                   OTEL_EXPORTER_OTLP_TIMEOUT = "60000"})})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    -- the one request still hangs (60 s) while the checkpoint runs
    assert.matches("hanging=true requests=1\n", r.out, 1, true)
    assert.matches("checkpoint=0|0|0\n", r.out, 1, true)
    assert.matches("wal=0 ", r.out, 1, true)
    assert.are.equal(10202, H.scalar(db, "SELECT sum(span_count) FROM traces"))
    assert.matches("exported 0 of 10202 spans (201 traces)", r.err, 1, true)
    assert.matches("the export deadline passed", r.err, 1, true)
  end)

  it("is off, with one notice, under OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none", function()
    local rx = O.receiver("200")
    for _, env in ipairs({{OTEL_SDK_DISABLED = "true"}, {OTEL_TRACES_EXPORTER = "none"}}) do
      local r = H.run_script('trace("t", function() span("s", function() end) end)',
                             {run_args = {"--export", "otlp=" .. rx.url}, env = env})
      assert.are.equal(0, r.code, r.err)
      local k = next(env)
      assert.matches("moonspan run: " .. k .. "=" .. env[k] .. " turns ", r.err, 1, true)
      assert.matches("unset it to export", r.err, 1, true)
      assert.are.equal(1, select(2, r.err:gsub("\n", "")), r.err)
      assert.are.equal(2, H.scalar(r.db, "SELECT count(*) FROM spans")) -- the run itself recorded
    end
    rx.stop()
    assert.are.equal(0, #rx.requests())
  end)

  it("refuses bad values before the script runs (exit 2, one line naming the fix)", function()
    local cases = {
      {{"--export", "zipkin"}, {}, "--export 'zipkin' is not an exporter; the exporter is otlp: --export otlp or --export otlp=URL"},
      {{"--export", "otlp="}, {}, "--export otlp= has no URL"},
      {{"--export", "otlp=ftp://127.0.0.1:4318"}, {}, "--export: "},
      -- found before the script runs, not as requests that fail at its end
      {{"--export", "otlp=http://127.0.0.1:99999"}, {}, "--export: the URL 'http://127.0.0.1:99999' is not a usable"
       .. " URL (Port number was not a decimal number between 0 and 65535); give one like http://127.0.0.1:4318"},
      {{"--export", "otlp"}, {OTEL_EXPORTER_OTLP_ENDPOINT = "http://"},
       "OTEL_EXPORTER_OTLP_ENDPOINT 'http://' is not a usable URL (no host)"},
      {{"--export", "otlp"}, {OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = "http://:4318/v1/traces"},
       "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT 'http://:4318/v1/traces' is not a usable URL (no host)"},
      {{"--export", "otlp"}, {OTEL_BSP_SCHEDULE_DELAY = "soon"},
       "OTEL_BSP_SCHEDULE_DELAY='soon' is not a whole number from 1 to 3600000; fix it or unset it"},
      {{"--export", "otlp"}, {OTEL_BSP_EXPORT_TIMEOUT = "0"}, "OTEL_BSP_EXPORT_TIMEOUT='0'"},
      {{"--export", "otlp"}, {OTEL_EXPORTER_OTLP_PROTOCOL = "grpc"}, "--export: "},
    }
    for _, c in ipairs(cases) do
      local dir = H.tmpdir("bad")
      local marker = dir .. "/ran"
      local args = {"run"}
      for _, a in ipairs(c[1]) do args[#args + 1] = a end
      args[#args + 1] = H.write(dir .. "/s.lua", "io.open(" .. string.format("%q", marker) .. ", 'w'):close()")
      local r = H.moonspan(args, {db = dir .. "/x.db", env = c[2]})
      H.usage_error(r, c[3])
      assert.is_false(H.exists(marker), "the script ran")
    end
  end)

  it("names a refused URL without its user:password@ or query (credentials go there)", function()
    local cases = {
      {"run", {"--export", "otlp"}, {OTEL_EXPORTER_OTLP_ENDPOINT = "htp://pk:hunter2@127.0.0.1:4318/otel?key=s3cr3t"},
       "OTEL_EXPORTER_OTLP_ENDPOINT 'htp://127.0.0.1:4318/otel' is not an http:// or https:// URL"},
      {"run", {"--export", "otlp=ftp://pk:hunter2@127.0.0.1:4318?key=s3cr3t"}, {},
       "the URL 'ftp://127.0.0.1:4318' is not an http:// or https:// URL"},
      {"export", {"otlp", "http://pk:hunter2@127.0.0.1:4318/v1/traces", "--signals", "metrics"}, {},
       "the URL 'http://127.0.0.1:4318/v1/traces' ends in /v1/traces, which takes traces only"},
    }
    for _, c in ipairs(cases) do
      local dir = H.tmpdir("secret-url")
      local args = {c[1]}
      for _, a in ipairs(c[2]) do args[#args + 1] = a end
      local script = H.write(dir .. "/s.lua", "")
      if c[1] == "run" then
        args[#args + 1] = script
      else -- a store to export from
        assert.are.equal(0, H.moonspan({"run", script}, {db = dir .. "/x.db"}).code)
      end
      local r = H.moonspan(args, {db = dir .. "/x.db", env = c[3]})
      H.usage_error(r, c[4])
      assert.is_nil(r.err:find("hunter2", 1, true), r.err)
      assert.is_nil(r.err:find("s3cr3t", 1, true), r.err)
    end
  end)
end)

describe("eval --export otlp", function()
  it("sends every case trace of the eval run", function()
    local dir = H.tmpdir("eval")
    local suite = H.write(dir .. "/live.lua", [[
      return suite "live" {
        dataset = {{id = "a", input = "hi"}, {id = "b", input = "yo"}, {id = "c", input = "hey"}},
        run = function(case)
          return span("answer", function()
            return llm.call{model = "mock", messages = {{role = "user", content = case.input}},
                            mock = {reply = "ok"}}.text
          end)
        end,
        scorers = {function(out) return out == "ok" end},
      }]])
    local rx = O.receiver("200")
    local db = dir .. "/x.db"
    local r = H.moonspan({"eval", "--export", "otlp=" .. rx.url, suite}, {db = db, env = FAST})
    rx.stop()
    assert.are.equal(0, r.code, r.out .. r.err)
    local got, n = rx.spans()
    local stored = O.same_as_store(db, got, n)
    local cases = 0
    for _, s in pairs(got) do
      if s.name:match("^eval:live:") then cases = cases + 1 end
    end
    assert.are.equal(3, cases)
    assert.matches(string.format("moonspan eval: exported %d of %d spans", stored, stored), r.err, 1, true)
  end)
end)

describe("run --export otlp and signals", function()
  it("sends everything, the interrupted trace included, when SIGTERM ends the run", function()
    local rx = O.receiver("200")
    local r = H.run_bg('trace("done", function() span("s", function() end) end)\n'
                       .. 'trace("cut", function() span("waiting", function() ready() moonspan.sleep_ms(30000) end) end)',
                       "sleep 0.2; kill -TERM $pid",
                       {cmd = {"run", "--quiet", "--export", "otlp=" .. rx.url}, env = FAST})
    rx.stop()
    assert.are.equal(143, r.status, r.out .. r.err)
    assert.is_true(r.seconds < 5, "took " .. r.seconds .. " s")
    local got, n = rx.spans()
    local stored = O.same_as_store(r.db, got, n)
    assert.are.equal(4, stored)
    assert.are.equal("interrupted", H.scalar(r.db, "SELECT status FROM traces WHERE name = 'cut'"))
    assert.matches("exported 4 of 4 spans (2 traces)", r.err, 1, true)
  end)

  it("ends at a second SIGINT even while a request hangs, naming the command", function()
    local rx = O.receiver("hang")
    local r = H.run_bg('trace("t", function() span("s", function() end) end)\n'
                       .. 'moonspan.sleep_ms(300)\nready()\nmoonspan.sleep_ms(30000)',
                       "sleep 0.2; kill -INT $pid; sleep 0.5; kill -INT $pid",
                       {cmd = {"run", "--quiet", "--export", "otlp=" .. rx.url}, env = FAST})
    rx.stop()
    assert.are.equal(130, r.status, r.out .. r.err)
    assert.is_true(r.seconds < 5, "took " .. r.seconds .. " s")
    assert.matches("the live export was cut short; the run's traces are in the store: `moonspan export otlp "
                   .. rx.url .. "/v1/traces --run 1 --db ", r.err, 1, true)
  end)
end)
