-- Prometheus /metrics: `moonspan serve --metrics` (from the store) and
-- `run --metrics-addr` (live), checked with promtool, and scraped by a real
-- Prometheus server whose HTTP API must give back what the store says.
-- promtool and prometheus come from Debian's `prometheus` package (make
-- deps): missing, these tests fail.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")
local q = H.q

-- A few traces with known counts: 6 requests (one failing), LLM calls on
-- the priced mock model, a step whose name needs escaping.
local PIPELINE = [[
for i = 1, 6 do
  pcall(trace, "answer", function()
    span('step "quoted"\nline2 \\ end', function() end)
    llm.call{model = "mock", messages = {{role = "user", content = "question " .. i}}}
    if i == 4 then error({type = "bad_input", message = "no"}) end
  end)
end
]]

-- Starts `cmd` (a shell command line for the binary, its stderr to a file)
-- in the background; returns its pid and the port it printed.
local function start_server(cmd, dir)
  local errf = dir .. "/server.err"
  local pid = H.spawn("exec " .. cmd .. " 2>" .. q(errf))
  local port = H.wait_match(errf, "http://127%.0%.0%.1:(%d+)/metrics", 10)
  assert(port, "the server printed no port: " .. (H.read(errf) or ""))
  return pid, tonumber(port), errf
end

local function stop(pid) H.stop(pid, 10) end

local function http_get(url)
  local r = H.sh("curl -sS -D - --max-time 10 " .. q(url))
  assert.are.equal(0, r.code, "curl " .. url .. ": " .. r.err)
  local head, body = r.out:match("^(.-)\r\n\r\n(.*)$")
  return {status = tonumber(head:match("^HTTP/%S+ (%d+)")), head = head, body = body}
end

local samples = H.prom_samples

local function promtool_ok(text, dir)
  local f = H.write(dir .. "/metrics.txt", text)
  local r = H.sh("promtool check metrics < " .. q(f))
  assert.are.equal(0, r.code, "promtool check metrics: " .. r.out .. r.err .. "\n" .. text)
end

-- Every histogram's +Inf bucket equals its _count, and buckets are cumulative.
local function histograms_consistent(text)
  local last, counts, infs = {}, {}, {}
  for line in text:gmatch("[^\n]+") do
    local name, labels, v = line:match("^([%w_]+)_bucket{(.*)} (%d+)$")
    if name then
      local series = name .. "{" .. labels:gsub(',?le="[^"]*"', "") .. "}"
      assert.is_true(tonumber(v) >= (last[series] or 0), "buckets not cumulative: " .. line)
      last[series] = tonumber(v)
      if labels:match('le="%+Inf"') then infs[series] = tonumber(v) end
    end
    local cname, clabels, cv = line:match("^([%w_]+)_count{(.*)} (%d+)$")
    if cname then counts[cname .. "{" .. clabels .. "}"] = tonumber(cv) end
  end
  local n = 0
  for series, c in pairs(counts) do
    assert.are.equal(c, infs[series], "+Inf bucket of " .. series)
    n = n + 1
  end
  assert.is_true(n > 0, "no histogram in the exposition")
end

describe("moonspan serve --metrics", function()
  it("serves the store's metrics, valid for promtool, equal to the store, and new traces at the next scrape",
     function()
    local r = H.run_script(PIPELINE)
    assert.are.equal(0, r.code, r.err)
    local pid, port = start_server(q(H.bin) .. " --db " .. q(r.db) .. " serve --metrics 127.0.0.1:0", r.dir)
    local ok, err = pcall(function()
      local res = http_get("http://127.0.0.1:" .. port .. "/metrics")
      assert.are.equal(200, res.status)
      assert.truthy(res.head:lower():find("content-type: text/plain; version=0.0.4; charset=utf-8", 1, true))
      promtool_ok(res.body, r.dir)
      histograms_consistent(res.body)
      local s = samples(res.body)
      assert.are.equal(5, s['moonspan_requests_total{trace_name="answer",status="ok"}'])
      assert.are.equal(1, s['moonspan_requests_total{trace_name="answer",status="error"}'])
      assert.are.equal(1, s['moonspan_errors_total{error_type="bad_input"}'])
      assert.are.equal(6, s['moonspan_step_duration_seconds_count{span_name="step \\"quoted\\"\\nline2 \\\\ end"}'])
      local llm = 'gen_ai_operation_name="chat",gen_ai_provider_name="mock",gen_ai_request_model="mock",'
                .. 'gen_ai_response_model="mock"'
      assert.are.equal(6, s["gen_ai_client_operation_duration_seconds_count{" .. llm .. "}"])
      local cost = H.scalar(r.db, "SELECT sum(cost_usd) FROM traces")
      H.close_to(cost, s['moonspan_cost_usd_total{gen_ai_provider_name="mock",gen_ai_request_model="mock",gen_ai_response_model="mock"}'],
                 "cost", 1e-9)
      local input = H.scalar(r.db, "SELECT sum(input_tokens + cache_read_tokens + cache_write_tokens) FROM traces")
      assert.are.equal(input, s["gen_ai_client_token_usage_sum{" .. llm .. ',gen_ai_token_type="input"}'])
      assert.is_nil(res.body:find("moonspan_writer_queue_depth", 1, true)) -- live only

      -- the same store grows while served: the next scrape has the new traces
      local r2 = H.run_script(PIPELINE, {db = r.db})
      assert.are.equal(0, r2.code, r2.err)
      local s2 = samples(http_get("http://127.0.0.1:" .. port .. "/metrics").body)
      assert.are.equal(10, s2['moonspan_requests_total{trace_name="answer",status="ok"}'])
      assert.are.equal(12, s2["gen_ai_client_operation_duration_seconds_count{" .. llm .. "}"])

      assert.are.equal(404, http_get("http://127.0.0.1:" .. port .. "/other").status)
    end)
    stop(pid)
    assert(ok, err)
  end)

  it("counts retries, and time to first token in the GenAI duration buckets", function()
    local r = H.run_script([[
      trace("streamed", function()
        span("chat mock", function(s) s:record_llm{provider = "mock", model = "mock", input_tokens = 3,
                                                   output_tokens = 2, ttft_ms = 30} end)
        llm.call{model = "mock", messages = {{role = "user", content = "q"}}, retries = 3,
                 mock = {fail = {status = 503, times = 2, retry_after_ms = 1}}}
        span("flaky", function(s) s:add_retries(1, true) end)
      end)
    ]])
    assert.are.equal(0, r.code, r.err)
    local pid, port = start_server(q(H.bin) .. " --db " .. q(r.db) .. " serve --metrics 127.0.0.1:0", r.dir)
    local ok, res = pcall(http_get, "http://127.0.0.1:" .. port .. "/metrics")
    stop(pid)
    assert(ok, res)
    promtool_ok(res.body, r.dir)
    local s = samples(res.body)
    local retries = H.scalar(r.db, "SELECT sum(retries) FROM spans")
    assert.are.equal(3, retries) -- 2 of the call, 1 of the step
    assert.are.equal(retries, s["moonspan_retries_total"])
    -- 30 ms: above the 0.02 s bound, within 0.04 s; the bounds are GenAI's
    local llm = 'gen_ai_operation_name="chat",gen_ai_provider_name="mock",gen_ai_request_model="mock",'
                .. 'gen_ai_response_model="mock"'
    local ttft = "gen_ai_client_operation_time_to_first_chunk_seconds"
    assert.are.equal(1, s[ttft .. "_count{" .. llm .. "}"])
    H.close_to(0.03, s[ttft .. "_sum{" .. llm .. "}"], "ttft sum", 1e-9)
    assert.are.equal(0, s[ttft .. "_bucket{" .. llm .. ',le="0.02"}'])
    assert.are.equal(1, s[ttft .. "_bucket{" .. llm .. ',le="0.04"}'])
    local bounds = {}
    for le in res.body:gmatch(ttft .. "_bucket{[^}]*le=\"([^\"]+)\"}") do bounds[#bounds + 1] = le end
    assert.are.equal("0.01,0.02,0.04,0.08,0.16,0.32,0.64,1.28,2.56,5.12,10.24,20.48,40.96,81.92,+Inf",
                     table.concat(bounds, ","))
  end)

  it("counts a trace written in parts once, with all its spans, when it ends", function()
    local dir = H.tmpdir("serve-parts")
    local db = dir .. "/x.db"
    -- 300 steps end, then a wait long enough for them to be written as a
    -- part while the trace is still open; the test scrapes, then lets it end
    local script = H.write(dir .. "/long.lua", string.format([[
      trace("long", function()
        for i = 1, 300 do span("early", function() end) end
        moonspan.sleep_ms(400)
        io.open(%q, "w"):close()
        for _ = 1, 1500 do
          local f = io.open(%q) if f then f:close() break end
          moonspan.sleep_ms(20)
        end
        span("late", function() end)
      end)]], dir .. "/ready", dir .. "/go"))
    local run_pid = H.spawn(string.format("exec %s --db %s run --quiet %s", q(H.bin), q(db), q(script)))
    local pid, port
    local ok, err = pcall(function()
      assert.is_true(H.wait_file(dir .. "/ready", 30), "the script never became ready")
      assert.are.equal(1, H.scalar(db, "SELECT count(*) FROM trace_parts"))
      pid, port = start_server(q(H.bin) .. " --db " .. q(db) .. " serve --metrics 127.0.0.1:0", dir)
      local s = samples(http_get("http://127.0.0.1:" .. port .. "/metrics").body)
      assert.is_nil(s['moonspan_requests_total{trace_name="long",status="ok"}']) -- still open:
      assert.is_nil(s['moonspan_requests_total{trace_name="long",status="incomplete"}']) -- not counted yet
      assert.is_nil(s['moonspan_step_duration_seconds_count{span_name="early"}'])
      H.write(dir .. "/go", "")
      assert.is_true(H.wait_gone(run_pid, 30), "the run did not end")
      s = samples(http_get("http://127.0.0.1:" .. port .. "/metrics").body)
      assert.are.equal(1, s['moonspan_requests_total{trace_name="long",status="ok"}'])
      assert.are.equal(300, s['moonspan_step_duration_seconds_count{span_name="early"}'])
      assert.are.equal(1, s['moonspan_step_duration_seconds_count{span_name="late"}'])
      s = samples(http_get("http://127.0.0.1:" .. port .. "/metrics").body) -- and only once
      assert.are.equal(1, s['moonspan_requests_total{trace_name="long",status="ok"}'])
    end)
    H.write(dir .. "/go", "")
    if pid then stop(pid) end
    stop(run_pid)
    assert(ok, err)
  end)

  it("ends with status 0 on SIGINT and SIGTERM, and refuses an oversized request body with 413", function()
    local r = H.run_script(PIPELINE)
    local big = H.write(r.dir .. "/big.bin", string.rep("x", 5 * 1024 * 1024))
    for _, sig in ipairs({"INT", "TERM"}) do
      local res = H.sh(string.format(
        "%s --db %s serve --metrics 127.0.0.1:0 2>%s & pid=$!; i=0; " ..
        "while ! grep -q /metrics %s 2>/dev/null && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); done; " ..
        "port=$(sed -n 's|.*127.0.0.1:\\([0-9]*\\)/metrics.*|\\1|p' %s); " ..
        "curl -s -o /dev/null -w 'big=%%{http_code}\n' -X GET --data-binary @%s http://127.0.0.1:$port/metrics; " ..
        "kill -%s $pid; wait $pid; echo \"status=$?\"",
        -- a file per signal: `2>file &` truncates in the child, so a reused file
        -- could still show the first server's port to the grep loop
        q(H.bin), q(r.db), q(r.dir .. "/e" .. sig), q(r.dir .. "/e" .. sig), q(r.dir .. "/e" .. sig), q(big), sig))
      assert.are.equal("0", res.out:match("status=(%d+)"), res.out .. res.err)
      assert.are.equal("413", res.out:match("big=(%d+)"), res.out)
    end
  end)

  it("refuses bad usage with exit 2 and a message naming the fix", function()
    local d = H.tmpdir("serve-usage")
    local cases = {
      {{"serve"}, "give %-%-metrics HOST:PORT"},
      {{"serve", "--metrics", "9464"}, "not HOST:PORT; give e%.g%. 127%.0%.0%.1:9464"},
      {{"serve", "--metrics", "127.0.0.1:99999"}, "port must be a number from 0 to 65535"},
      {{"serve", "--metrics", "example.com:9464"}, "not an IPv4 address"},
      {{"serve", "--metrics", "127.0.0.1:0", "--db", d .. "/none.db"}, "no moonspan database"},
      {{"serve", "--bogus"}, "bogus"},
    }
    for _, c in ipairs(cases) do
      local r = H.moonspan(c[1])
      assert.are.equal(2, r.code, table.concat(c[1], " "))
      assert.matches(c[2], r.err)
      assert.are.equal("", r.out)
      assert.are.equal(1, H.lines(r.err), r.err)
    end
    local h = H.moonspan({"serve", "--help"})
    assert.are.equal(0, h.code)
    assert.matches("%-%-metrics HOST:PORT", h.out)
    for _, verb in ipairs({"run", "eval"}) do
      local bad = H.moonspan({verb, "--metrics-addr", "localhost", "x.lua"})
      assert.are.equal(2, bad.code, verb)
      assert.matches("^moonspan " .. verb .. ": %-%-metrics%-addr 'localhost' is not HOST:PORT; give e%.g%. "
                     .. "127%.0%.0%.1:9464", bad.err)
      assert.are.equal(1, H.lines(bad.err), bad.err)
      assert.matches("%-%-metrics%-addr HOST:PORT", H.moonspan({verb, "--help"}).out)
    end
  end)

  it("exits 2 when the port is taken", function()
    local r = H.run_script(PIPELINE)
    local pid, port = start_server(q(H.bin) .. " --db " .. q(r.db) .. " serve --metrics 127.0.0.1:0", r.dir)
    local again = H.moonspan({"serve", "--metrics", "127.0.0.1:" .. port}, {db = r.db})
    local run = H.run_script("span('x', function() end)", {run_args = {"--metrics-addr", "127.0.0.1:" .. port}})
    stop(pid)
    assert.are.equal(2, again.code)
    assert.matches("cannot listen on 127%.0%.0%.1:" .. port .. ".*choose another", again.err)
    assert.are.equal(2, run.code)
    assert.matches("%-%-metrics%-addr: cannot listen", run.err)
    assert.is_false(H.exists(run.db), "a refused run recorded nothing") -- refused before the store opened
  end)
end)

-- A script that records 8 traces, flushes them, says it is ready, then
-- waits (at most 30 s) for the test to create GO before it ends.
local LIVE = [[
for i = 1, 8 do
  trace("live", function()
    span("work", function() end)
    llm.call{model = "mock", messages = {{role = "user", content = "q" .. i}}}
  end)
end
moonspan.flush()
ready()
local go = READY:gsub("ready$", "go")
for _ = 1, 1500 do
  local f = io.open(go) if f then f:close() break end
  moonspan.sleep_ms(20)
end
]]

-- Starts LIVE under `moonspan run --metrics-addr 127.0.0.1:0` in dir, with
-- `extra` (a string of more run options) if given; returns once it is
-- ready: its pid (a shell that writes the exit status to dir/status), the
-- port, and the paths of go and status.
local function start_live(dir, db, extra)
  local script = H.write(dir .. "/live.lua", string.format(
    "READY = %q\nfunction ready() io.open(READY, 'w'):close() end\n", dir .. "/ready") .. LIVE)
  local pid, port = start_server(string.format("sh -c %s", q(string.format(
    "%s --db %s run --quiet --metrics-addr 127.0.0.1:0 %s %s; echo $? > %s", q(H.bin), q(db), extra or "", q(script),
    q(dir .. "/status")))), dir)
  assert.is_true(H.wait_file(dir .. "/ready", 30), "the script never became ready")
  return pid, port, dir .. "/go", dir .. "/status"
end

describe("run --metrics-addr", function()
  it("serves the running process's metrics, valid for promtool, with the writer's queue depth", function()
    local dir = H.tmpdir("live")
    local db = dir .. "/x.db"
    local pid, port, go, status = start_live(dir, db)
    local ok, res = pcall(http_get, "http://127.0.0.1:" .. port .. "/metrics")
    H.write(go, "")
    assert.is_true(H.wait_gone(pid, 30), "the run did not end")
    assert(ok, res)
    assert.are.equal("0", (H.read(status) or ""):match("%d+"), H.read(dir .. "/server.err"))
    assert.are.equal(200, res.status)
    promtool_ok(res.body, dir)
    histograms_consistent(res.body)
    local s = samples(res.body)
    assert.are.equal(8, s['moonspan_requests_total{trace_name="live",status="ok"}'])
    assert.are.equal(8, s['moonspan_step_duration_seconds_count{span_name="work"}'])
    H.close_to(H.scalar(db, "SELECT sum(cost_usd) FROM traces"),
               s['moonspan_cost_usd_total{gen_ai_provider_name="mock",gen_ai_request_model="mock",gen_ai_response_model="mock"}'], "cost", 1e-9)
    assert.are.equal(0, s["moonspan_writer_queue_depth"])
  end)
end)

describe("run --metrics-addr with --log-file", function()
  it("feeds both from the one writer: /metrics counts the traces the JSON log records", function()
    local dir = H.tmpdir("live-log")
    local log = dir .. "/run.jsonl"
    local pid, port, go, status = start_live(dir, dir .. "/x.db", "--log-file " .. q(log))
    local ok, res = pcall(http_get, "http://127.0.0.1:" .. port .. "/metrics")
    local logged_while_live = H.read(log) or ""
    H.write(go, "")
    assert.is_true(H.wait_gone(pid, 30), "the run did not end")
    assert(ok, res)
    assert.are.equal("0", (H.read(status) or ""):match("%d+"), H.read(dir .. "/server.err"))
    local s = samples(res.body)
    assert.are.equal(8, s['moonspan_requests_total{trace_name="live",status="ok"}'])
    assert.are.equal(8, s['moonspan_step_duration_seconds_count{span_name="work"}'])
    local roots, works = 0, 0 -- the 8 flushed traces were logged before the scrape
    for line in logged_while_live:gmatch("[^\n]+") do
      local rec = H.json(line)
      if rec.eventName == "moonspan.span.end" then
        local name = rec.attributes["moonspan.span.name"]
        if name == "live" then roots = roots + 1 end
        if name == "work" then works = works + 1 end
      end
    end
    assert.are.equal(8, roots, logged_while_live)
    assert.are.equal(8, works, logged_while_live)
  end)
end)

-- A real Prometheus (Debian's 2.42) as a plain process on a loopback port,
-- scraping `targets` (job name -> port) every second.
local function start_prometheus(dir, targets)
  local cfg = {"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"}
  for job, port in pairs(targets) do
    cfg[#cfg + 1] = string.format("  - job_name: %s\n    static_configs:\n      - targets: ['127.0.0.1:%d']\n",
                                  job, port)
  end
  H.write(dir .. "/prometheus.yml", table.concat(cfg))
  for _ = 1, 3 do -- a port another process holds: another try on another port
    local port = math.random(20000, 60000)
    local pid = H.spawn(string.format("exec prometheus --config.file=%s --storage.tsdb.path=%s "
      .. "--web.listen-address=127.0.0.1:%d --log.level=warn 2>%s", q(dir .. "/prometheus.yml"),
      q(dir .. "/data"), port, q(dir .. "/prometheus.log")))
    local deadline = moonspan.now_ms() + 20000
    while moonspan.now_ms() < deadline and not H.wait_gone(pid, 0) do
      local r = H.sh("curl -sf --max-time 2 http://127.0.0.1:" .. port .. "/-/ready")
      if r.code == 0 then return pid, port end
      moonspan.sleep_ms(100)
    end
    stop(pid)
  end
  error("prometheus did not start: " .. (H.read(dir .. "/prometheus.log") or "no log"))
end

-- The value of instant query `expr` once Prometheus has it (it scrapes
-- every second); nil after 20 s.
local function query_value(port, expr)
  local deadline = moonspan.now_ms() + 20000
  while moonspan.now_ms() < deadline do
    local r = H.sh("curl -sS --max-time 5 -G --data-urlencode " .. q("query=" .. expr)
                   .. " http://127.0.0.1:" .. port .. "/api/v1/query")
    if r.code == 0 and r.out ~= "" then
      local res = H.json(r.out)
      local v = res.status == "success" and res.data.result[1]
      if v then return tonumber(v.value[2]) end
    end
    moonspan.sleep_ms(200)
  end
  return nil
end

describe("a real Prometheus server", function()
  it("scrapes serve --metrics and a live run, and its query API gives back what the store says", function()
    local r = H.run_script(PIPELINE)
    assert.are.equal(0, r.code, r.err)
    local live_dir = H.tmpdir("live-prom")
    local pids, go = {}, live_dir .. "/go"
    local ok, err = pcall(function()
      local serve_pid, serve_port = start_server(q(H.bin) .. " --db " .. q(r.db)
                                                 .. " serve --metrics 127.0.0.1:0", r.dir)
      pids[#pids + 1] = serve_pid
      local live_pid, live_port = start_live(live_dir, live_dir .. "/x.db")
      pids[#pids + 1] = live_pid
      local prom_pid, prom_port = start_prometheus(r.dir, {store = serve_port, live = live_port})
      pids[#pids + 1] = prom_pid

      local requests = H.scalar(r.db, "SELECT count(*) FROM traces WHERE status = 'ok'")
      assert.are.equal(requests, query_value(prom_port, 'moonspan_requests_total{job="store",status="ok"}'))
      H.close_to(H.scalar(r.db, "SELECT sum(cost_usd) FROM traces"),
                 query_value(prom_port, 'sum(moonspan_cost_usd_total{job="store"})'), "store cost", 1e-9)
      assert.are.equal(6, query_value(prom_port,
        'sum(gen_ai_client_operation_duration_seconds_count{job="store",gen_ai_request_model="mock"})'))

      assert.are.equal(8, query_value(prom_port, 'moonspan_requests_total{job="live",trace_name="live"}'))
      local live_cost = query_value(prom_port, 'sum(moonspan_cost_usd_total{job="live"})')
      H.write(go, "")
      assert.is_true(H.wait_gone(live_pid, 30), "the live run did not end")
      H.close_to(H.scalar(live_dir .. "/x.db", "SELECT sum(cost_usd) FROM traces"), live_cost, "live cost", 1e-9)
      local up = query_value(prom_port, 'sum(up{job="store"})')
      assert.are.equal(1, up)
    end)
    H.write(go, "") -- the live run ends by itself then, on failure too
    for _, pid in ipairs(pids) do stop(pid) end
    assert(ok, err)
  end)
end)

describe("eval --metrics-addr", function()
  it("serves the eval run's live metrics: its cases' traces and LLM calls", function()
    local dir = H.tmpdir("eval-live")
    -- three cases end; the fourth waits (at most 30 s) for GO, so the test
    -- scrapes while the eval runs
    local suite = H.write(dir .. "/live_suite.lua", string.format([[
      return suite "live" {
        dataset = {{id = "a", input = "x"}, {id = "b", input = "y"}, {id = "c", input = "z"}, {id = "wait", input = "w"}},
        run = function(case)
          if case.id == "wait" then
            moonspan.flush()
            io.open(%q, "w"):close()
            for _ = 1, 1500 do
              local f = io.open(%q) if f then f:close() break end
              moonspan.sleep_ms(20)
            end
            return case.input
          end
          llm.call{model = "mock", messages = {{role = "user", content = case.input}}}
          return case.input
        end,
        scorers = {exact(case_field "input")},
      }]], dir .. "/ready", dir .. "/go"))
    local pid, port = start_server(string.format("%s --db %s eval --concurrency 1 --metrics-addr 127.0.0.1:0 %s",
                                                 q(H.bin), q(dir .. "/x.db"), q(suite)), dir)
    local ok, res = pcall(function()
      assert.is_true(H.wait_file(dir .. "/ready", 30), "the eval never reached its last case")
      return http_get("http://127.0.0.1:" .. port .. "/metrics")
    end)
    H.write(dir .. "/go", "")
    assert.is_true(H.wait_gone(pid, 30), "the eval did not end")
    assert(ok, res)
    promtool_ok(res.body, dir)
    local s = samples(res.body)
    local llm = 'gen_ai_operation_name="chat",gen_ai_provider_name="mock",gen_ai_request_model="mock",'
                .. 'gen_ai_response_model="mock"'
    assert.are.equal(3, s["gen_ai_client_operation_duration_seconds_count{" .. llm .. "}"])
    local requests = 0
    for k, v in pairs(s) do
      if k:match("^moonspan_requests_total{") then requests = requests + v end
    end
    assert.are.equal(3, requests)
  end)
end)
