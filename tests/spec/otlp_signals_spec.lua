-- `moonspan export otlp --signals traces,metrics,logs`: the metrics and log
-- signals sent to the loopback receiver (tests/otel/receiver.js), which
-- decodes them with the official OTLP schema (@opentelemetry/otlp-
-- transformer) in both encodings. Metrics are checked series by series
-- against what `moonspan serve --metrics` shows for the same store; log
-- records against the stored spans and errors (the spans table).
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")
local cjson = require "cjson"
local q = H.q

local O = dofile(H.root .. "/tests/spec/otlp_helpers.lua")
local receiver = O.receiver

local function export(db, args, env)
  local a = {"export", "otlp"}
  for _, x in ipairs(args) do a[#a + 1] = x end
  local e = {OTEL_EXPORTER_OTLP_ENDPOINT = false, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = false,
             OTEL_EXPORTER_OTLP_LOGS_ENDPOINT = false, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = false,
             OTEL_METRICS_EXPORTER = false, OTEL_LOGS_EXPORTER = false, OTEL_TRACES_EXPORTER = false,
             OTEL_EXPORTER_OTLP_PROTOCOL = false, OTEL_SDK_DISABLED = false}
  for k, v in pairs(env or {}) do e[k] = v end
  return H.moonspan(a, {db = db, env = e})
end

-- Two requests: an LLM call with cache tokens, TTFT and a cost, a call
-- on a model with no price, a retried span; and one whose step raised, plus
-- an error added by hand.
local PIPELINE = [[
trace("answer", function(ctx)
  span("retrieve", function(s) s:set("k", 3) end)
  span("chat claude-sonnet-4", function(s)
    s:record_llm{provider = "anthropic", model = "claude-sonnet-4", input_tokens = 100, output_tokens = 20,
                 cache_read_tokens = 30, cache_write_tokens = 10, ttft_ms = 250, cost_usd = 0.0123}
  end)
  span("chat house-model", function(s)
    s:record_llm{provider = "house", model = "house-model", input_tokens = 7, output_tokens = 2}
  end)
  ctx:add_error("the cache was cold", "cold_cache")
end)
pcall(trace, "broken", function()
  span("parse", function() error({type = "bad_json", message = "unexpected '}' at 12"}) end)
end)
]]

local store = H.once(function() return H.run_ok(PIPELINE).db end)

-- A metric's series as Prometheus names them: OpenTelemetry name ->
-- exposition name and the labels in the exposition's order.
local PROM = {
  ["moonspan.request.duration"] = {"moonspan_request_duration_seconds", "s", {"moonspan.trace.name"}},
  ["moonspan.requests"] = {"moonspan_requests_total", "{request}", {"moonspan.trace.name", "moonspan.trace.status"}},
  ["moonspan.step.duration"] = {"moonspan_step_duration_seconds", "s", {"moonspan.span.name"}},
  ["gen_ai.client.operation.duration"] = {"gen_ai_client_operation_duration_seconds", "s",
    {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model", "error.type"}},
  ["gen_ai.client.operation.time_to_first_chunk"] = {"gen_ai_client_operation_time_to_first_chunk_seconds", "s",
    {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model", "error.type"}},
  ["gen_ai.client.token.usage"] = {"gen_ai_client_token_usage", "{token}",
    {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model",
     "gen_ai.token.type"}},
  ["moonspan.cost.usd"] = {"moonspan_cost_usd_total", "{USD}",
    {"gen_ai.provider.name", "gen_ai.request.model", "gen_ai.response.model"}},
  ["moonspan.errors"] = {"moonspan_errors_total", "{error}", {"error.type"}},
  ["moonspan.retries"] = {"moonspan_retries_total", "{retry}", {}},
}
local LABEL = {["moonspan.trace.name"] = "trace_name", ["moonspan.trace.status"] = "status",
               ["moonspan.span.name"] = "span_name"}

local samples = H.prom_samples

-- What `moonspan serve --metrics` shows for the store.
local function scrape(db)
  local dir = H.tmpdir("serve")
  local errf = dir .. "/err"
  local pid = H.spawn("exec " .. q(H.bin) .. " --db " .. q(db) .. " serve --metrics 127.0.0.1:0 2>" .. q(errf))
  local port = H.wait_match(errf, "http://127%.0%.0%.1:(%d+)/metrics", 10)
  assert(port, "serve printed no port: " .. (H.read(errf) or ""))
  local r = H.sh("curl -sS --max-time 10 http://127.0.0.1:" .. port .. "/metrics")
  H.stop(pid, 10)
  assert.are.equal(0, r.code, r.err)
  return r.out
end

local function prom_key(name, suffix, attrs, label_keys, extra)
  local parts = {}
  for _, k in ipairs(label_keys) do
    local v = attrs[k]
    if v then
      parts[#parts + 1] = (LABEL[k] or k:gsub("%.", "_")) .. '="' .. v .. '"'
    end
  end
  if extra then parts[#parts + 1] = extra end
  if #parts == 0 then return name .. suffix end
  return name .. suffix .. "{" .. table.concat(parts, ",") .. "}"
end

local function close(a, b) return math.abs(a - b) <= 1e-12 * math.max(1, math.abs(a), math.abs(b)) end

-- Every point of the one metrics request equals the exposition's series,
-- and every series of the exposition is a point. Returns the metrics by name.
local function check_metrics(db, body, text, start)
  local s = samples(text)
  local series = 0
  for key in pairs(s) do
    if not key:match("_bucket{") and not key:match("_sum{") and not key:match("_sum$") then
      series = series + 1 -- a counter's line, or a histogram's _count
    end
  end
  assert.are.equal(1, #body)
  local rm = body[1]
  assert.are.equal("unknown_service:moonspan", rm.resource["service.name"])
  local sm = rm.scopeMetrics[1]
  assert.are.equal("moonspan", sm.scope.name)
  assert.are.equal("https://opentelemetry.io/schemas/1.41.0", sm.schemaUrl)
  local first = start or H.scalar(db, "SELECT CAST(min(start_ns) AS TEXT) FROM traces")
  local by_name, points = {}, 0
  for _, m in ipairs(sm.metrics) do
    local p = PROM[m.name]
    assert.is_not_nil(p, "unexpected metric " .. m.name)
    assert.is_nil(by_name[m.name], m.name .. " sent twice")
    by_name[m.name] = m
    assert.are.equal(p[2], m.unit, m.name .. "'s unit")
    assert.are.equal(2, m.temporality, m.name .. " is cumulative")
    for _, pt in ipairs(m.points) do
      points = points + 1
      assert.are.equal(first, pt.startTimeUnixNano)
      assert.is_true(#pt.timeUnixNano == #first and pt.timeUnixNano > first)
      if m.kind == "histogram" then
        local bounds = pt.explicitBounds
        assert.are.equal(#bounds + 1, #pt.bucketCounts)
        assert.are.equal(tostring(s[prom_key(p[1], "_count", pt.attributes, p[3])]), pt.count)
        assert.is_true(close(s[prom_key(p[1], "_sum", pt.attributes, p[3])], pt.sum), m.name .. " sum")
        local cum = 0
        for i, b in ipairs(bounds) do
          cum = cum + tonumber(pt.bucketCounts[i])
          local le = prom_key(p[1], "_bucket", pt.attributes, p[3], string.format('le="%.15g"', b))
          assert.are.equal(s[le], cum, le)
        end
        cum = cum + tonumber(pt.bucketCounts[#pt.bucketCounts])
        assert.are.equal(s[prom_key(p[1], "_bucket", pt.attributes, p[3], 'le="+Inf"')], cum)
        assert.are.equal(tonumber(pt.count), cum)
      else
        assert.are.equal("sum", m.kind)
        assert.is_true(m.isMonotonic)
        local v = s[prom_key(p[1], "", pt.attributes, p[3])]
        assert.is_not_nil(v, "no exposition series for " .. m.name .. " " .. cjson.encode(pt.attributes))
        if m.name == "moonspan.cost.usd" then
          assert.is_true(close(v, pt.asDouble))
        else
          assert.are.equal(string.format("%d", v), pt.asInt)
        end
      end
    end
  end
  assert.are.equal(series, points, "the exposition's series and the OTLP points")
  return by_name, points
end

local function point(m, want)
  for _, pt in ipairs(m.points) do
    local ok = true
    for k, v in pairs(want) do ok = ok and pt.attributes[k] == v end
    if ok then return pt end
  end
end

describe("export otlp --signals metrics", function()
  it("sends the serve --metrics registry, with OpenTelemetry names and units, in protobuf and JSON", function()
    local db = store()
    local text = scrape(db)
    for _, proto in ipairs({"http/protobuf", "http/json"}) do
      local rx = receiver()
      local r = export(db, {rx.url, "--signals", "metrics", "--protocol", proto})
      rx.stop()
      assert.are.equal(0, r.code, r.out .. r.err)
      local reqs = rx.requests()
      assert.are.equal(1, #reqs, "metrics only: one request")
      local req = reqs[1]
      assert.are.equal("/v1/metrics", req.path)
      assert.are.equal(proto == "http/json" and "application/json" or "application/x-protobuf", req.contentType)
      assert.are.equal("gzip", req.contentEncoding)
      assert.is_nil(req.error)
      local m, points = check_metrics(db, req.body, text)
      -- the GenAI metrics: tokens by type (input counts the cache), TTFT, cost; unpriced has no cost
      local tokens = m["gen_ai.client.token.usage"]
      local input = point(tokens, {["gen_ai.request.model"] = "claude-sonnet-4", ["gen_ai.token.type"] = "input"})
      local output = point(tokens, {["gen_ai.request.model"] = "claude-sonnet-4", ["gen_ai.token.type"] = "output"})
      assert.are.equal(140, input.sum)
      assert.are.equal(20, output.sum)
      assert.are.equal("anthropic", input.attributes["gen_ai.provider.name"])
      assert.are.equal("chat", input.attributes["gen_ai.operation.name"])
      local ttft = point(m["gen_ai.client.operation.time_to_first_chunk"], {["gen_ai.request.model"] = "claude-sonnet-4"})
      assert.are.equal("1", ttft.count)
      assert.is_true(close(0.25, ttft.sum))
      assert.are.same({0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92},
                      ttft.explicitBounds)
      assert.are.same({"0", "0", "0", "0", "0", "1", "0", "0", "0", "0", "0", "0", "0", "0", "0"}, ttft.bucketCounts)
      local cost = m["moonspan.cost.usd"]
      assert.are.equal(1, #cost.points)
      assert.is_true(close(0.0123, cost.points[1].asDouble))
      assert.are.equal("1", point(m["moonspan.errors"], {["error.type"] = "bad_json"}).asInt)
      assert.are.equal("1", point(m["moonspan.errors"], {["error.type"] = "cold_cache"}).asInt)
      assert.are.equal("1", point(m["moonspan.requests"], {["moonspan.trace.name"] = "broken",
                                                          ["moonspan.trace.status"] = "error"}).asInt)
      assert.matches("^" .. points .. " data points of 2 traces to http://127%.0%.0%.1:%d+/v1/metrics %("
                     .. proto:gsub("%p", "%%%0") .. ", gzip%) in 1 request: " .. points
                     .. " sent, 0 rejected, 0 failed\n$", r.out)
    end
  end)

  it("sends the metrics of the selected traces only", function()
    local db = store()
    local rx = receiver()
    local r = export(db, {rx.url, "--signals", "metrics", "--name", "broken", "--compression", "none"})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    local req = rx.to("/v1/metrics")[1]
    assert.are.equal("", req.contentEncoding)
    local names = {}
    for _, m in ipairs(req.body[1].scopeMetrics[1].metrics) do
      names[m.name] = m
      for _, pt in ipairs(m.points) do
        local trace = pt.attributes["moonspan.trace.name"]
        assert.is_true(trace == nil or trace == "broken")
      end
    end
    assert.is_nil(names["gen_ai.client.token.usage"], "the LLM calls are in the other trace")
    assert.are.equal("1", names["moonspan.requests"].points[1].asInt)
    assert.matches("of 1 trace to", r.out)
  end)
end)

-- The stored spans, ids as hex, times as text.
local function stored_spans(db)
  return H.query(db, [[
    SELECT s.trace_id, printf('%016x', s.span_id) AS span_id,
           CASE WHEN s.parent_id IS NULL THEN '' ELSE printf('%016x', s.parent_id) END AS parent_id,
           s.name, s.kind, CAST(s.start_ns + s.duration_ns AS TEXT) AS end_ns, s.duration_ns,
           CASE WHEN s.span_index = 0 THEN t.status ELSE s.status END AS status,
           s.error_own, s.error_type, s.error_message, s.model
    FROM spans s JOIN traces t ON t.id = s.trace_row]])
end

local function stored_error_events(db)
  return H.query(db, [[
    SELECT printf('%016x', e.span_id) AS span_id, CAST(e.time_ns AS TEXT) AS time_ns, e.error_type, e.error_message
    FROM span_events e WHERE e.error_type IS NOT NULL]])
end

local function check_logs(db, body)
  local ends, errors = {}, {}
  local n = 0
  for _, rl in ipairs(body) do
    assert.are.equal("unknown_service:moonspan", rl.resource["service.name"])
    for _, sl in ipairs(rl.scopeLogs) do
      assert.are.equal("moonspan", sl.scope.name)
      for _, rec in ipairs(sl.logRecords) do
        n = n + 1
        assert.are.equal(1, rec.flags)
        assert.is_nil(rec.attributes.__duplicate)
        assert.is_true(rec.observedTimeUnixNano >= rec.timeUnixNano)
        if rec.severityNumber == 17 then
          assert.are.equal("ERROR", rec.severityText)
          errors[#errors + 1] = rec
        else
          assert.is_nil(ends[rec.spanId], "two end records for span " .. rec.spanId)
          ends[rec.spanId] = rec
        end
      end
    end
  end
  local spans = stored_spans(db)
  local nerr = 0
  for _, s in ipairs(spans) do
    local rec = ends[s.span_id]
    assert.is_not_nil(rec, "no end record for span " .. s.name)
    assert.are.equal(s.trace_id, rec.traceId)
    assert.are.equal(s.end_ns, rec.timeUnixNano)
    assert.are.equal(s.status == "ok" and 9 or 13, rec.severityNumber)
    assert.are.equal(s.status == "ok" and "INFO" or "WARN", rec.severityText)
    local ms = string.format("%d.%06d", s.duration_ns // 1000000, s.duration_ns % 1000000)
    assert.are.equal(s.name .. " ended " .. s.status .. " after " .. ms .. " ms", rec.body)
    assert.are.equal(s.name, rec.attributes["moonspan.span.name"])
    assert.are.equal(s.status, rec.attributes["moonspan.span.status"])
    assert.are.equal(s.kind, rec.attributes["moonspan.kind"])
    assert.are.equal(s.parent_id ~= "" and s.parent_id or nil, rec.attributes["moonspan.span.parent_id"])
    if s.model then assert.are.equal(s.model, rec.attributes["gen_ai.request.model"]) end
    if s.error_own == 1 then
      nerr = nerr + 1
      local found
      for _, e in ipairs(errors) do
        if e.spanId == s.span_id and e.attributes["exception.type"] == s.error_type then found = e end
      end
      assert.is_not_nil(found, "no ERROR record for " .. s.name)
      assert.are.equal(s.trace_id, found.traceId)
      assert.are.equal(s.error_message, found.body)
      assert.are.equal(s.error_message, found.attributes["exception.message"])
      assert.are.equal(s.end_ns, found.timeUnixNano)
      assert.are.equal(s.name, found.attributes["moonspan.span.name"])
    end
  end
  for _, ev in ipairs(stored_error_events(db)) do
    nerr = nerr + 1
    local found
    for _, e in ipairs(errors) do
      if e.spanId == ev.span_id and e.body == ev.error_message then found = e end
    end
    assert.is_not_nil(found, "no ERROR record for the added error " .. ev.error_message)
    assert.are.equal(ev.error_type, found.attributes["exception.type"])
    assert.are.equal(ev.time_ns, found.timeUnixNano)
  end
  assert.are.equal(2, nerr, "the raised error and the added one")
  assert.are.equal(nerr, #errors)
  assert.are.equal(#spans + nerr, n)
  return #spans, n
end

describe("export otlp --signals logs", function()
  it("sends a record per stored span end and per error, in protobuf and JSON", function()
    local db = store()
    for _, proto in ipairs({"http/protobuf", "http/json"}) do
      local rx = receiver()
      local r = export(db, {rx.url, "--signals", "logs", "--protocol", proto, "--batch", "3"})
      rx.stop()
      assert.are.equal(0, r.code, r.out .. r.err)
      local body = {}
      for _, req in ipairs(rx.requests()) do
        assert.are.equal("/v1/logs", req.path)
        assert.is_nil(req.error)
        for _, rl in ipairs(req.body) do body[#body + 1] = rl end
        if proto == "http/json" then
          -- eventName (LogRecord field 12) is newer than the schema the receiver decodes with
          assert.matches('"eventName":"moonspan.span.end"', req.rawJson)
        end
      end
      local nspans, nrecords = check_logs(db, body)
      assert.are.equal(math.ceil(nrecords / 3) <= #rx.requests(), true)
      assert.matches(string.format("^%d log records of %d spans of 2 traces to http://127%%.0%%.0%%.1:%%d+/v1/logs",
                                   nrecords, nspans), r.out)
      assert.matches(nrecords .. " sent, 0 rejected, 0 failed\n$", r.out)
    end
  end)

  it("counts a partial success as rejected records, exits 1, and does not retry", function()
    local db = store()
    local rx = receiver("partial:2")
    local r = export(db, {rx.url, "--signals", "logs", "--protocol", "http/json"})
    rx.stop()
    assert.are.equal(1, r.code)
    assert.are.equal(1, #rx.requests())
    assert.matches("2 rejected", r.out)
    assert.matches("rejected 2 %(partial success; not retried%): 2 spans too old", r.err)
    assert.matches("2 log records were not delivered; they are still in the store", r.err)
  end)
end)

describe("export otlp per-signal configuration", function()
  it("sends each signal to its path under a base URL; traces alone by default", function()
    local db = store()
    local rx = receiver()
    local r = export(db, {rx.url})
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(1, #rx.requests())
    assert.are.equal("/v1/traces", rx.requests()[1].path)
    r = export(db, {"--signals", "traces,metrics,logs"}, {OTEL_EXPORTER_OTLP_ENDPOINT = rx.url .. "/base/"})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(1, #rx.to("/base/v1/traces"))
    assert.are.equal(1, #rx.to("/base/v1/metrics"))
    assert.are.equal(1, #rx.to("/base/v1/logs"))
    assert.are.equal(3, select(2, r.out:gsub("\n", "")), "a line per signal")
  end)

  it("appends a signal's path to a base URL's path, its query kept after it; a full URL with a query as it is",
     function()
    local db = store()
    local rx = receiver()
    local r = export(db, {rx.url .. "/base/?tenant=a%20b", "--signals", "traces,metrics,logs"})
    assert.are.equal(0, r.code, r.err)
    r = export(db, {rx.url .. "/mine/v1/traces?tenant=c"})
    assert.are.equal(0, r.code, r.err)
    r = export(db, {"--signals", "logs"}, {OTEL_EXPORTER_OTLP_ENDPOINT = rx.url .. "?tenant=d"})
    assert.are.equal(0, r.code, r.err)
    -- a full URL of one signal is known by its path, whatever its query
    r = export(db, {rx.url .. "/v1/traces?tenant=e", "--signals", "metrics"})
    H.usage_error(r, "ends in /v1/traces, which takes traces only")
    rx.stop()
    local paths = {}
    for _, req in ipairs(rx.requests()) do
      assert.are.equal(200, req.status, req.path)
      paths[#paths + 1] = req.path
    end
    table.sort(paths)
    assert.are.same({"/base/v1/logs?tenant=a%20b", "/base/v1/metrics?tenant=a%20b", "/base/v1/traces?tenant=a%20b",
                     "/mine/v1/traces?tenant=c", "/v1/logs?tenant=d"}, paths)
  end)

  it("takes OTEL_EXPORTER_OTLP_{METRICS,LOGS}_ENDPOINT verbatim and the per-signal protocol", function()
    local db = store()
    local rx = receiver()
    local r = export(db, {"--signals", "metrics,logs,traces"}, {
      OTEL_EXPORTER_OTLP_ENDPOINT = rx.url .. "/generic",
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = rx.url .. "/mine/v1/metrics",
      OTEL_EXPORTER_OTLP_LOGS_ENDPOINT = rx.url .. "/theirs/v1/logs",
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL = "http/json",
      OTEL_EXPORTER_OTLP_LOGS_COMPRESSION = "none",
      OTEL_EXPORTER_OTLP_LOGS_HEADERS = "x-signal=logs",
    })
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    local m, l, t = rx.to("/mine/v1/metrics"), rx.to("/theirs/v1/logs"), rx.to("/generic/v1/traces")
    assert.are.equal(1, #m)
    assert.are.equal(1, #l)
    assert.are.equal(1, #t)
    assert.are.equal(3, #rx.requests())
    assert.are.equal("application/json", m[1].contentType)
    assert.are.equal("gzip", m[1].contentEncoding)
    assert.are.equal("application/x-protobuf", l[1].contentType)
    assert.are.equal("", l[1].contentEncoding)
    assert.are.equal("logs", l[1].headers["x-signal"])
    assert.is_nil(m[1].headers["x-signal"])
    assert.is_nil(t[1].headers["x-signal"])
    assert.are.equal("application/x-protobuf", t[1].contentType)
  end)

  it("skips a signal whose OTEL_<SIGNAL>_EXPORTER is none, and refuses when every one asked is", function()
    local db = store()
    local rx = receiver()
    local r = export(db, {rx.url, "--signals", "traces,metrics"}, {OTEL_METRICS_EXPORTER = "none"})
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(0, #rx.to("/v1/metrics"))
    assert.are.equal(1, #rx.to("/v1/traces"))
    assert.are.equal("moonspan export: metrics not sent: OTEL_METRICS_EXPORTER=none turns them off\n", r.err)
    r = export(db, {rx.url, "--signals", "logs"}, {OTEL_LOGS_EXPORTER = "none"})
    rx.stop()
    H.usage_error(r, "every signal asked for is turned off")
    assert.are.equal(1, #rx.requests())
  end)

  it("refuses bad signals and a traces URL for other signals, sending nothing", function()
    local db = store()
    local rx = receiver()
    H.usage_error(export(db, {rx.url, "--signals", "traces,spans"}),
                  "--signals: 'spans' is not a signal; give any of traces,metrics,logs")
    H.usage_error(export(db, {rx.url, "--signals", ""}), "--signals is empty")
    H.usage_error(export(db, {rx.url .. "/v1/traces", "--signals", "traces,metrics"}),
                  "ends in /v1/traces, which takes traces only; give the base URL")
    H.usage_error(export(db, {"--signals", "logs"}, {OTEL_EXPORTER_OTLP_LOGS_PROTOCOL = "grpc"}),
                  "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL grpc: moonspan speaks OTLP over HTTP only")
    assert.are.equal(0, #rx.requests())
    -- a full URL of the signal asked is taken as it is; exporters moonspan lacks are named and ignored
    local r = export(db, {rx.url .. "/v1/metrics", "--signals", "metrics"}, {OTEL_METRICS_EXPORTER = "prometheus"})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("moonspan export: OTEL_METRICS_EXPORTER names exporters moonspan does not have;"
                     .. " they are ignored and the metrics go over OTLP\n", r.err)
    assert.are.equal(1, #rx.requests())
    assert.are.equal("/v1/metrics", rx.requests()[1].path)
    assert.matches("%-%-signals LIST", H.moonspan({"export", "--help"}).out)
  end)
end)

-- Live: `run --export otlp=URL` with OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER
-- naming otlp sends the metrics on their interval and at the end, and the
-- log records with the traces (URL is the base of all three, as for export).
local LIVE = PIPELINE:gsub('pcall%(trace, "broken"', 'moonspan.sleep_ms(400)\npcall(trace, "broken"')
local LIVE_ENV = {OTEL_METRICS_EXPORTER = "otlp", OTEL_LOGS_EXPORTER = "otlp", OTEL_METRIC_EXPORT_INTERVAL = "100",
                  OTEL_BSP_SCHEDULE_DELAY = "100"}

describe("run --export otlp with OTEL_METRICS_EXPORTER and OTEL_LOGS_EXPORTER = otlp", function()
  it("sends the run's metrics on the interval and at the end, and its log records", function()
    local rx = receiver()
    local r = H.run_script(LIVE, {run_args = {"--export", "otlp=" .. rx.url}, env = LIVE_ENV})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    -- logs: every span's end and every error, once, as the store has them
    local body = {}
    for _, req in ipairs(rx.to("/v1/logs")) do
      assert.is_nil(req.error)
      for _, rl in ipairs(req.body) do body[#body + 1] = rl end
    end
    local nspans, nrecords = check_logs(r.db, body)
    -- metrics: more than the one at the end (the interval is 100 ms, the script 400 ms), all from one
    -- start; the last one is the whole run, as `serve --metrics` shows its store
    local m = rx.to("/v1/metrics")
    assert.is_true(#m >= 2, "metrics sent at the end only: " .. #m)
    local start = m[1].body[1].scopeMetrics[1].metrics[1].points[1].startTimeUnixNano
    assert.is_true(start <= H.scalar(r.db, "SELECT CAST(min(start_ns) AS TEXT) FROM traces"))
    local last_time = ""
    for _, req in ipairs(m) do
      assert.is_nil(req.error)
      local t = req.body[1].scopeMetrics[1].metrics[1].points[1].timeUnixNano
      assert.is_true(t > last_time)
      last_time = t
    end
    local _, points = check_metrics(r.db, m[#m].body, scrape(r.db), start)
    local total = 0
    for _, req in ipairs(m) do
      for _, metric in ipairs(req.body[1].scopeMetrics[1].metrics) do total = total + #metric.points end
    end
    assert.is_true(points > 0)
    assert.matches("moonspan run: exported " .. nspans .. " of " .. nspans .. " spans", r.err, 1, true)
    assert.matches("moonspan run: exported " .. nrecords .. " of " .. nrecords .. " log records to http://127.0.0.1:"
                   .. rx.port .. "/v1/logs (http/protobuf, gzip)", r.err, 1, true)
    assert.matches("moonspan run: exported " .. total .. " of " .. total .. " data points to http://127.0.0.1:"
                   .. rx.port .. "/v1/metrics (http/protobuf, gzip) in " .. #m .. " requests\n", r.err, 1, true)
  end)

  it("labels an LLM call's metrics with the model asked for and the one that answered, live and from the store",
     function()
    local fake = dofile(H.root .. "/tests/spec/fake_server.lua").start(H)
    local rx = receiver()
    -- the fake OpenAI answers gpt-4o with gpt-4o-2024-08-06, as OpenAI does;
    -- the second call fails, so nothing answered it
    local r = H.run_script('trace("t", function()'
                           .. ' llm.call{model = "gpt-4o", messages = {{role = "user", content = "hi"}}}'
                           .. ' pcall(llm.call, {model = "mock-large", retries = 0, messages = {{role = "user",'
                           .. ' content = "hi"}}, mock = {fail = {status = 400}}}) end)',
                           {run_args = {"--export", "otlp=" .. rx.url}, env = fake.env(LIVE_ENV)})
    fake.stop()
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("gpt-4o-2024-08-06", H.scalar(r.db, "SELECT model FROM spans WHERE name = 'chat gpt-4o'"))
    -- live (the writer's registry): the last request holds the whole run
    local m = rx.to("/v1/metrics")
    local body = m[#m].body
    local ops
    for _, metric in ipairs(body[1].scopeMetrics[1].metrics) do
      if metric.name == "gen_ai.client.operation.duration" then ops = metric end
    end
    assert.is_not_nil(ops, "no gen_ai.client.operation.duration")
    local answered = point(ops, {["gen_ai.request.model"] = "gpt-4o"})
    assert.is_not_nil(answered, "no point for the model asked for")
    assert.are.equal("gpt-4o-2024-08-06", answered.attributes["gen_ai.response.model"])
    assert.are.equal("openai", answered.attributes["gen_ai.provider.name"])
    assert.is_nil(point(ops, {["gen_ai.request.model"] = "gpt-4o-2024-08-06"}))
    local failed = point(ops, {["gen_ai.request.model"] = "mock-large"})
    assert.is_not_nil(failed, "no point for the failed call")
    assert.is_not_nil(failed.attributes["error.type"])
    assert.is_nil(failed.attributes["gen_ai.response.model"])
    assert.are.equal(2, #ops.points)
    -- from the store (serve --metrics): the same series, point for point
    local text = scrape(r.db)
    assert.matches('gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="chat",'
                   .. 'gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o",'
                   .. 'gen_ai_response_model="gpt-4o-2024-08-06"} 1\n', text, 1, true)
    assert.matches('moonspan_cost_usd_total{gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o",'
                   .. 'gen_ai_response_model="gpt-4o-2024-08-06"} ', text, 1, true)
    assert.is_nil(text:find('gen_ai_request_model="gpt-4o-2024-08-06"', 1, true))
    check_metrics(r.db, body, text, body[1].scopeMetrics[1].metrics[1].points[1].startTimeUnixNano)
  end)

  it("sends traces only without them, and counts what a signal could not send with the command that resends it",
     function()
    local rx = receiver()
    local r = H.run_script(PIPELINE, {run_args = {"--export", "otlp=" .. rx.url}})
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(#rx.requests(), #rx.to("/v1/traces"))
    -- logs to a port nobody listens on: the run still exits 0, the line says how to send them later
    r = H.run_script(PIPELINE, {run_args = {"--export", "otlp"}, env = {
      OTEL_EXPORTER_OTLP_ENDPOINT = rx.url, OTEL_LOGS_EXPORTER = "otlp",
      OTEL_EXPORTER_OTLP_LOGS_ENDPOINT = "http://127.0.0.1:1/v1/logs", OTEL_BSP_EXPORT_TIMEOUT = "1500"}})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(0, #rx.to("/v1/logs"))
    assert.is_true(#rx.to("/v1/traces") >= 2, "the traces went to OTEL_EXPORTER_OTLP_ENDPOINT")
    local run = string.format("%d", H.scalar(r.db, "SELECT max(id) FROM runs"))
    assert.matches("moonspan run: exported 0 of 8 log records to http://127.0.0.1:1/v1/logs", r.err, 1, true)
    assert.matches("; 8 not sent (last error: ", r.err, 1, true)
    assert.matches("`moonspan export otlp http://127.0.0.1:1/v1/logs --signals logs --run " .. run .. " --db ",
                   r.err, 1, true)
  end)

  it("sends metrics and logs to their own endpoint variables when --export gives the full traces URL", function()
    local rx = receiver()
    local script = 'trace("t", function() span("s", function() end) end)'
    local r = H.run_script(script, {run_args = {"--export", "otlp=" .. rx.url .. "/v1/traces"}, env = {
      OTEL_METRICS_EXPORTER = "otlp", OTEL_LOGS_EXPORTER = "otlp",
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = rx.url .. "/m/v1/metrics",
      OTEL_EXPORTER_OTLP_LOGS_ENDPOINT = rx.url .. "/l/v1/logs"}})
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(1, #rx.to("/m/v1/metrics"))
    assert.are.equal(1, #rx.to("/l/v1/logs"))
    assert.are.equal(3, #rx.requests())
    assert.matches("2 of 2 log records to " .. rx.url .. "/l/v1/logs", r.err, 1, true)
    -- without its variable, a signal has nowhere to go: refused before the script runs
    r = H.run_script("print('ran')", {run_args = {"--export", "otlp=" .. rx.url .. "/v1/traces"},
                                      env = {OTEL_LOGS_EXPORTER = "otlp"}})
    rx.stop()
    H.usage_error(r, "OTEL_LOGS_EXPORTER=otlp: the URL '" .. rx.url .. "/v1/traces' ends in /v1/traces, which takes"
                  .. " traces only; give the base URL (like http://127.0.0.1:4318) to send logs too, or send each"
                  .. " signal to its own URL with OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")
  end)

  it("counts a failed metrics request as carried, not lost, once a later one delivered the cumulative totals", function()
    local traces, metrics = receiver("200"), receiver("400,200")
    local r = H.run_script('moonspan.sleep_ms(150) trace("a", function() span("s", function() end) end)'
                           .. ' moonspan.sleep_ms(400) trace("b", function() end)', {run_args = {"--export", "otlp"},
                           env = {OTEL_METRICS_EXPORTER = "otlp", OTEL_METRIC_EXPORT_INTERVAL = "100",
                                  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = traces.url .. "/v1/traces",
                                  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = metrics.url .. "/v1/metrics"}})
    traces.stop()
    metrics.stop()
    assert.are.equal(0, r.code, r.err)
    local reqs = metrics.requests()
    assert.is_true(#reqs >= 2, #reqs .. " metrics requests")
    assert.are.equal(400, reqs[1].status)
    local first, total = 0, 0
    for i, req in ipairs(reqs) do
      local n = 0
      for _, m in ipairs(req.body[1].scopeMetrics[1].metrics) do n = n + #m.points end
      if i == 1 then first = n end
      total = total + n
    end
    assert.matches(string.format("moonspan run: exported %d of %d data points to %s/v1/metrics (http/protobuf, gzip)"
                                 .. " in %d requests; the %d data points of failed requests are in a later request's"
                                 .. " cumulative totals\n", total - first, total, metrics.url, #reqs, first),
                   r.err, 1, true)
    assert.is_nil(r.err:find("--signals metrics", 1, true), r.err) -- nothing to send again
  end)

  it("refuses a bad per-signal value before the script runs", function()
    local r = H.run_script("print('ran')", {run_args = {"--export", "otlp=http://127.0.0.1:1"},
                                            env = {OTEL_LOGS_EXPORTER = "otlp", OTEL_EXPORTER_OTLP_LOGS_PROTOCOL = "grpc"}})
    H.usage_error(r, "OTEL_LOGS_EXPORTER=otlp: OTEL_EXPORTER_OTLP_LOGS_PROTOCOL grpc: moonspan speaks OTLP over HTTP only")
  end)
end)
