-- `moonspan export otlp`: stored traces sent to a loopback OTLP/HTTP
-- receiver (tests/otel/receiver.js), which decodes protobuf with the
-- official OTLP schema (@opentelemetry/otlp-transformer) and JSON with
-- JSON.parse; what it got is checked field by field against the store,
-- read through the spans table with the sqlite3 CLI.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")
local cjson = require "cjson"
local q = H.q

local O = dofile(H.root .. "/tests/spec/otlp_helpers.lua")

-- The loopback receiver (otlp_helpers.lua), with receiver.js's options.
local function receiver(answers, extra) return O.receiver(answers, nil, extra) end

-- A whole number read back from JSON (cjson gives floats) as its digits.
local function int(v) return string.format("%d", v) end

local function export(db, args, env)
  local a = {"export", "otlp"}
  for _, x in ipairs(args) do a[#a + 1] = x end
  return H.moonspan(a, {db = db, env = env})
end

-- A store with two traces: a pipeline with a step, a real llm.call (mock
-- provider), a recorded call with cache tokens, TTFT and a cost, a call
-- with an unpriced model, and an attribute; and a trace that failed.
local PIPELINE = [[
trace("answer", function(ctx)
  ctx:set("user_tier", "pro")
  span("retrieve", function(s) s:set("k", 3) s:set("ratio", 0.5) s:set("hit", true) end)
  llm.call{provider = "mock", model = "gpt-4o", messages = {{role = "user", content = "hi"}}}
  span("chat claude-sonnet-4", function(s)
    s:record_llm{provider = "anthropic", model = "claude-sonnet-4", input_tokens = 100, output_tokens = 20,
                 cache_read_tokens = 30, cache_write_tokens = 10, ttft_ms = 250, cost_usd = 0.0123}
  end)
  span("chat house-model", function(s)
    s:record_llm{provider = "house", model = "house-model", input_tokens = 7, output_tokens = 2}
  end)
end)
pcall(trace, "broken", function()
  span("parse", function() error({type = "bad_json", message = "unexpected '}' at 12"}) end)
end)
]]

local function store()
  local r = H.run_ok(PIPELINE)
  return r.db
end

-- The store's spans, with ids as hex and times as text (nanoseconds do
-- not fit a double).
local function stored_spans(db)
  return H.query(db, [[
    SELECT s.trace_id, printf('%016x', s.span_id) AS span_id,
           CASE WHEN s.parent_id IS NULL THEN '' ELSE printf('%016x', s.parent_id) END AS parent_id,
           s.name, s.kind, CAST(s.start_ns AS TEXT) AS start_ns,
           CAST(s.start_ns + s.duration_ns AS TEXT) AS end_ns, s.status, s.error_type, s.error_message,
           s.provider, s.model, s.input_tokens, s.output_tokens, s.cache_read_tokens, s.cache_write_tokens,
           s.cost_usd, s.ttft_ns, s.retries, s.span_index, t.status AS trace_status
    FROM spans s JOIN traces t ON t.id = s.trace_row]])
end

-- Checks every stored span against the one received with its id.
local function check_against_store(db, got, n)
  local rows = stored_spans(db)
  assert.are.equal(#rows, n)
  for _, row in ipairs(rows) do
    local s = got[row.span_id]
    assert.is_not_nil(s, "span " .. row.name .. " " .. row.span_id .. " was not received")
    assert.are.equal(row.trace_id, s.traceId)
    assert.are.equal(row.parent_id, s.parentSpanId)
    assert.are.equal(row.name, s.name)
    assert.are.equal(row.start_ns, s.startTimeUnixNano)
    assert.are.equal(row.end_ns, s.endTimeUnixNano)
    assert.are.equal(row.kind, s.attributes["moonspan.kind"])
    assert.is_nil(s.attributes.__duplicate)
    local status = row.span_index == 0 and row.trace_status or row.status
    if status == "ok" then
      assert.are.equal(0, s.status.code)
    else
      assert.are.equal(2, s.status.code)
    end
    if row.error_type then
      assert.are.equal(row.error_type, s.attributes["error.type"])
      assert.are.equal(row.error_message, s.status.message)
    end
    if row.kind == "llm" then
      local a = s.attributes
      assert.are.equal(3, s.kind) -- CLIENT
      assert.are.equal("chat", a["gen_ai.operation.name"])
      assert.are.equal(row.provider, a["gen_ai.provider.name"])
      assert.are.equal(row.model, a["gen_ai.request.model"]) -- the model asked for is the one answering here
      assert.are.equal(row.model, a["llm.model_name"])
      if row.status == "ok" then
        assert.are.equal(row.model, a["gen_ai.response.model"])
      else
        assert.is_nil(a["gen_ai.response.model"])
      end
      assert.are.equal("LLM", a["openinference.span.kind"])
      -- GenAI's input counts the cache; the store keeps it apart
      local input = row.input_tokens + row.cache_read_tokens + row.cache_write_tokens
      assert.are.equal(int(input), a["gen_ai.usage.input_tokens"])
      assert.are.equal(int(row.output_tokens), a["gen_ai.usage.output_tokens"])
      assert.are.equal(int(row.cache_read_tokens), a["gen_ai.usage.cache_read.input_tokens"])
      assert.are.equal(int(row.cache_write_tokens), a["gen_ai.usage.cache_creation.input_tokens"])
      assert.are.equal(int(input), a["llm.token_count.prompt"])
      assert.are.equal(int(row.output_tokens), a["llm.token_count.completion"])
      assert.are.equal(int(input + row.output_tokens), a["llm.token_count.total"])
      if row.cost_usd then
        assert.is_true(math.abs(a["gen_ai.usage.cost"] - row.cost_usd) < 1e-12)
      else
        assert.is_nil(a["gen_ai.usage.cost"]) -- unknown, never 0
      end
      if row.ttft_ns then
        assert.is_true(math.abs(a["gen_ai.response.time_to_first_chunk"] - row.ttft_ns / 1e9) < 1e-9)
        assert.is_string(a["langfuse.observation.completion_start_time"])
      else
        assert.is_nil(a["gen_ai.response.time_to_first_chunk"])
      end
    else
      assert.are.equal(1, s.kind) -- INTERNAL
      assert.are.equal("CHAIN", s.attributes["openinference.span.kind"])
    end
  end
end

describe("moonspan export otlp", function()
  it("sends protobuf with gzip that the official schema decodes to the stored spans", function()
    local db = store()
    local rx = receiver("200")
    local r = export(db, {rx.url}, {OTEL_SERVICE_NAME = "svc-test",
                                    OTEL_RESOURCE_ATTRIBUTES = "deployment.environment=test%20env,service.name=x",
                                    OTEL_EXPORTER_OTLP_HEADERS = "Authorization=Basic%20cGs6c2s=,x-langfuse-ingestion-version=4"})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    local reqs = rx.requests()
    assert.are.equal(1, #reqs)
    local req = reqs[1]
    assert.are.equal("/v1/traces", req.path)
    assert.are.equal("application/x-protobuf", req.contentType)
    assert.are.equal("gzip", req.contentEncoding)
    assert.are.equal("Basic cGs6c2s=", req.authorization)
    assert.are.equal("4", req.headers["x-langfuse-ingestion-version"])
    assert.is_nil(req.error)
    local got, n, resources = rx.spans()
    check_against_store(db, got, n)
    assert.are.equal("svc-test", resources[1]["service.name"]) -- OTEL_SERVICE_NAME wins
    assert.are.equal("test env", resources[1]["deployment.environment"])
    local scope = req.body[1].scopeSpans[1]
    assert.are.equal("moonspan", scope.scope.name)
    assert.are.equal("https://opentelemetry.io/schemas/1.41.0", scope.schemaUrl)
    assert.matches(n .. " spans of 2 traces", r.out, 1, true)
    assert.matches("1 request: " .. n .. " sent, 0 rejected, 0 failed", r.out, 1, true)

    -- the details the mapping promises
    local by_name = {}
    for _, s in pairs(got) do by_name[s.name] = s end
    local claude = by_name["chat claude-sonnet-4"].attributes
    assert.are.equal(0.25, claude["gen_ai.response.time_to_first_chunk"])
    local start = H.scalar(db, "SELECT start_ns + ttft_ns FROM spans WHERE model = 'claude-sonnet-4'")
    local iso = os.date("!%Y-%m-%dT%H:%M:%S", start // 1000000000) .. string.format(".%03dZ", start // 1000000 % 1000)
    assert.are.equal(iso, claude["langfuse.observation.completion_start_time"])
    assert.are.same({"stop"}, by_name["chat gpt-4o"].attributes["gen_ai.response.finish_reasons"])
    local retrieve = by_name.retrieve.attributes
    assert.are.equal("3", retrieve.k)
    assert.are.equal(0.5, retrieve.ratio)
    assert.are.equal(true, retrieve.hit)
    assert.are.equal("pro", by_name.answer.attributes.user_tier)
    local parse = by_name.parse
    assert.are.equal("bad_json", parse.attributes["error.type"])
    assert.are.equal("exception", parse.events[1].name)
    assert.are.equal("bad_json", parse.events[1].attributes["exception.type"])
    assert.are.equal("unexpected '}' at 12", parse.events[1].attributes["exception.message"])
    assert.are.equal(2, by_name.broken.status.code)
  end)

  it("sends OTLP/JSON by the specification's JSON rules", function()
    local db = store()
    local rx = receiver("200")
    local r = export(db, {rx.url, "--protocol", "http/json", "--compression", "none"})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    local req = rx.requests()[1]
    assert.are.equal("application/json", req.contentType)
    assert.are.equal("", req.contentEncoding)
    local got, n = rx.spans()
    check_against_store(db, got, n)
    -- hex ids (not base64), enums as integers, int64 as strings, camelCase keys
    local raw = req.rawJson
    assert.matches('"traceId":"%x+"', raw)
    assert.is_nil(raw:find('"traceId":"[^"]*[A-Z+/=]'))
    assert.matches('"spanId":"' .. string.rep("%x", 16) .. '"', raw)
    assert.matches('"kind":3,', raw, 1)
    assert.matches('"startTimeUnixNano":"%d+"', raw)
    assert.matches('"intValue":"%d+"', raw)
    assert.is_nil(raw:find('"start_time_unix_nano"', 1, true))
    local parsed = cjson.decode(raw) -- valid JSON, whole
    assert.are.equal(n, #parsed.resourceSpans[1].scopeSpans[1].spans)
  end)

  it("keeps the tree of a run that joined an outer trace (TRACEPARENT)", function()
    local r = H.run_ok('trace("joined", function() span("inner", function() end) end)',
                       {env = {TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
    local rx = receiver("200")
    local e = export(r.db, {rx.url})
    rx.stop()
    assert.are.equal(0, e.code, e.err)
    local got, n = rx.spans()
    check_against_store(r.db, got, n)
    for _, s in pairs(got) do
      assert.are.equal("4bf92f3577b34da6a3ce929d0e0e4736", s.traceId)
      if s.name == "joined" then assert.are.equal("00f067aa0ba902b7", s.parentSpanId) end
    end
  end)

  it("names a request's session, user and tags as Langfuse and Phoenix read them", function()
    local r = H.run_ok('trace("chat", {session = "s-42", user = "u-7",'
                       .. ' tags = {"beta", "caf\\u{e9} \\"q\\" \\\\ \\u{1F600}\\n"}}, function()'
                       .. ' span("step", function() end) end)')
    for _, protocol in ipairs({"http/protobuf", "http/json"}) do
      local rx = receiver("200")
      local e = export(r.db, {rx.url, "--protocol", protocol})
      rx.stop()
      assert.are.equal(0, e.code, e.err)
      local got, n = rx.spans()
      check_against_store(r.db, got, n)
      local root, step
      for _, s in pairs(got) do
        if s.name == "chat" then root = s elseif s.name == "step" then step = s end
      end
      assert.are.equal("s-42", root.attributes["session.id"])
      assert.are.equal("s-42", root.attributes["gen_ai.conversation.id"])
      assert.are.equal("u-7", root.attributes["user.id"])
      assert.are.equal("s-42", root.attributes["session"]) -- the stored attribute itself stays
      -- Langfuse's string[] of tags, each decoded from the stored JSON text
      assert.are.same({"beta", "caf\u{e9} \"q\" \\ \u{1F600}\n"}, root.attributes["langfuse.trace.tags"])
      assert.is_nil(step.attributes["session.id"])        -- the request's, on its root only
      assert.is_nil(step.attributes["langfuse.trace.tags"])
    end
  end)

  it("names the model asked for and the model that answered apart (request and response model)", function()
    local fake = dofile(H.root .. "/tests/spec/fake_server.lua").start(H)
    -- the fake OpenAI answers gpt-4o with gpt-4o-2024-08-06, as OpenAI does
    local r = H.run_script('trace("t", function()'
                           .. ' llm.call{model = "gpt-4o", messages = {{role = "user", content = "hi"}}}'
                           .. ' pcall(llm.call, {model = "mock-large", retries = 0, messages = {{role = "user",'
                           .. ' content = "hi"}}, mock = {fail = {status = 400}}}) end)', {env = fake.env()})
    fake.stop()
    assert.are.equal(0, r.code, r.err)
    local rx = receiver("200")
    local e = export(r.db, {rx.url})
    rx.stop()
    assert.are.equal(0, e.code, e.err)
    local got = rx.spans()
    local answered, failed
    for _, sp in pairs(got) do
      if sp.name == "chat gpt-4o" then answered = sp.attributes elseif sp.name == "chat mock-large" then
        failed = sp.attributes
      end
    end
    assert.are.equal("gpt-4o", answered["gen_ai.request.model"])
    assert.are.equal("gpt-4o-2024-08-06", answered["gen_ai.response.model"])
    assert.are.equal("gpt-4o-2024-08-06", answered["llm.model_name"])
    assert.are.equal("mock-large", failed["gen_ai.request.model"])
    assert.is_nil(failed["gen_ai.response.model"]) -- nothing answered
    assert.is_nil(answered.__duplicate)
  end)

  it("cuts batches at --batch spans and sends every span once", function()
    local db = store()
    local rx = receiver("200")
    local r = export(db, {rx.url, "--batch", "2"})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    local got, n = rx.spans()
    check_against_store(db, got, n)
    assert.are.equal(math.ceil(n / 2), #rx.requests())
  end)

  it("holds no read snapshot while a request hangs: a run writing meanwhile gets its WAL checkpointed", function()
    local db = store()
    local rx = receiver("hang")
    local writer = H.write(H.tmpdir("writer") .. "/w.lua",
                           'for i = 1, 20 do trace("later", function() span("s", function() end) end) end')
    -- the export is stuck in its first request (of one span) when another
    -- run writes to the store; a TRUNCATE checkpoint is then busy ("1|...")
    -- if the export still holds the snapshot it read that span in
    local r = H.sh(string.format(
      "%s --db %s export otlp %s --batch 1 --timeout 60000 >/dev/null 2>&1 & pid=$!; i=0; "
      .. "while ! grep -q '\"status\":0' %s 2>/dev/null && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); done; "
      .. "%s --db %s run --quiet %s && sqlite3 -cmd '.timeout 3000' %s 'PRAGMA wal_checkpoint(TRUNCATE)'; "
      .. "kill $pid; wait $pid",
      q(H.bin), q(db), q(rx.url), q(rx.log), q(H.bin), q(db), q(writer), q(db)))
    rx.stop()
    assert.are.equal(1, #rx.requests(), r.err)
    assert.are.equal("0|0|0\n", r.out, r.err)
    assert.are.equal(20, H.scalar(db, "SELECT count(*) FROM traces WHERE name = 'later'")) -- the run wrote
  end)

  it("exports only the selection: --run and --since", function()
    local dir = H.tmpdir("sel")
    local db = dir .. "/x.db"
    H.run_ok('trace("first", function() end)', {db = db})
    H.run_ok('trace("second", function() end) trace("third", function() end)', {db = db})
    local run = int(H.scalar(db, "SELECT max(id) FROM runs"))
    local rx = receiver("200")
    local r = export(db, {rx.url, "--run", run})
    assert.are.equal(0, r.code, r.err)
    local got, n = rx.spans()
    assert.are.equal(2, n)
    for _, s in pairs(got) do assert.is_true(s.name == "second" or s.name == "third") end
    local none = export(db, {rx.url, "--since", "1d", "--until", "12h"})
    rx.stop()
    assert.are.equal(0, none.code, none.err)
    assert.matches("0 spans of 0 traces", none.out, 1, true)
    local bad = export(db, {rx.url, "--run", "999"})
    assert.are.equal(2, bad.code)
    assert.matches("no run 999", bad.err, 1, true)
  end)

  it("retries 503 after Retry-After, then succeeds", function()
    local db = store()
    local rx = receiver("503:1,200")
    local t0 = moonspan.now_ms()
    local r = export(db, {rx.url})
    local took = moonspan.now_ms() - t0
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    local reqs = rx.requests()
    assert.are.equal(2, #reqs)
    assert.are.equal(503, reqs[1].status)
    assert.are.equal(200, reqs[2].status)
    assert.is_true(took >= 1000, "waited " .. took .. " ms, Retry-After said 1 s")
    assert.matches("0 failed, 1 retry", r.out, 1, true)
    local got, n = rx.spans()
    check_against_store(db, got, n)
  end)

  it("retries 429, 502 and 504 too, and never 400 or 500", function()
    local db = store()
    local rx = receiver("429:0,502:0,504:0,200")
    local r = export(db, {rx.url})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(4, #rx.requests())
    for _, status in ipairs({"400", "500"}) do
      local bad = receiver(status)
      local e = export(db, {bad.url})
      bad.stop()
      assert.are.equal(1, e.code)
      assert.are.equal(1, #bad.requests(), status .. " must not be retried")
      assert.matches("HTTP " .. status, e.err, 1, true)
      assert.matches("still in the store", e.err, 1, true)
      assert.matches("0 sent, 0 rejected, " .. int(H.scalar(db, "SELECT count(*) FROM spans")) .. " failed", e.out, 1, true)
    end
  end)

  it("gives up after its attempts, counting the spans as failed", function()
    local db = store()
    local rx = receiver("503:0")
    local r = export(db, {rx.url})
    rx.stop()
    assert.are.equal(1, r.code)
    assert.are.equal(5, #rx.requests())
    assert.matches("after 5 attempts: HTTP 503", r.err, 1, true)
  end)

  it("logs a partial success and does not retry it", function()
    local db = store()
    local total = H.scalar(db, "SELECT count(*) FROM spans")
    for _, proto in ipairs({"http/protobuf", "http/json"}) do
      local rx = receiver("partial:2")
      local r = export(db, {rx.url, "--protocol", proto})
      rx.stop()
      assert.are.equal(1, r.code, proto)
      assert.are.equal(1, #rx.requests())
      assert.matches("rejected 2 (partial success; not retried): 2 spans too old", r.err, 1, true)
      assert.matches(int(total - 2) .. " sent, 2 rejected, 0 failed", r.out, 1, true)
    end
  end)

  it("takes Langfuse's JSON answer to a protobuf request as success", function()
    local db = store()
    local rx = receiver("langfuse")
    local r = export(db, {rx.url .. "/api/public/otel"})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("/api/public/otel/v1/traces", rx.requests()[1].path)
  end)

  it("meets Phoenix's exact Content-Type with protobuf; its 415 for JSON is not retried", function()
    local db = store()
    local rx = receiver("200", "--phoenix")
    local ok = export(db, {rx.url})
    local bad = export(db, {rx.url, "--protocol", "http/json"})
    rx.stop()
    assert.are.equal(0, ok.code, ok.err)
    assert.are.equal(1, bad.code)
    local reqs = rx.requests()
    assert.are.equal(2, #reqs)
    assert.are.equal(415, reqs[2].status)
  end)

  it("counts spans as failed when nothing listens, and says they are still in the store", function()
    local db = H.run_ok('trace("lonely", function() end)').db
    local rx = receiver("200")
    local url = rx.url
    rx.stop()
    moonspan.sleep_ms(200)
    local r = export(db, {url, "--timeout", "2000"})
    assert.are.equal(1, r.code)
    assert.matches("0 sent, 0 rejected, 1 failed", r.out, 1, true)
    assert.matches("still in the store", r.err, 1, true)
  end)

  it("finds the endpoint the way OpenTelemetry SDKs do", function()
    local db = H.run_ok('trace("t", function() end)').db
    local rx = receiver("200")
    -- the generic variable is a base: /v1/traces appended with one '/'
    local a = export(db, {}, {OTEL_EXPORTER_OTLP_ENDPOINT = rx.url .. "/base/"})
    -- the per-signal one is used as it is, and wins
    local b = export(db, {}, {OTEL_EXPORTER_OTLP_ENDPOINT = "http://127.0.0.1:1",
                              OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = rx.url .. "/custom/path"})
    -- per-signal protocol and compression win over the generic ones
    local c = export(db, {}, {OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = rx.url .. "/v1/traces",
                              OTEL_EXPORTER_OTLP_PROTOCOL = "http/protobuf",
                              OTEL_EXPORTER_OTLP_TRACES_PROTOCOL = "http/json",
                              OTEL_EXPORTER_OTLP_COMPRESSION = "none"})
    -- an empty variable is unset; --header wins over the variable
    local d = export(db, {rx.url, "--header", "authorization=Bearer%20flag"},
                     {OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = "", OTEL_EXPORTER_OTLP_HEADERS = "authorization=Bearer env"})
    rx.stop()
    for _, r in ipairs({a, b, c, d}) do assert.are.equal(0, r.code, r.err) end
    local reqs = rx.requests()
    assert.are.equal("/base/v1/traces", reqs[1].path)
    assert.are.equal("/custom/path", reqs[2].path)
    assert.are.equal("application/json", reqs[3].contentType)
    assert.are.equal("", reqs[3].contentEncoding)
    assert.are.equal("Bearer flag", reqs[4].authorization)
    assert.are.equal("unknown_service:moonspan", reqs[4].body[1].resource["service.name"])
  end)

  it("refuses bad usage with exit 2 and a fix, printing no header value", function()
    local db = H.run_ok('trace("t", function() end)').db
    local cases = {
      {{"export"}, "export otlp"},
      {{"export", "csv"}, "the format is otlp"},
      {{"export", "otlp", "ftp://x"}, "http:// or https://"},
      {{"export", "otlp", "--protocol", "grpc"}, "use http/protobuf"},
      {{"export", "otlp", "--protocol", "thrift"}, "use http/protobuf or http/json"},
      {{"export", "otlp", "--compression", "br"}, "use gzip or none"},
      {{"export", "otlp", "--header", "Authorization"}, "key=value"},
      {{"export", "otlp", "--batch", "0"}, "--batch"},
      {{"export", "otlp", "--timeout", "x"}, "--timeout"},
    }
    for _, cse in ipairs(cases) do
      local r = H.moonspan(cse[1], {db = db})
      assert.are.equal(2, r.code, table.concat(cse[1], " ") .. ": " .. r.err)
      assert.matches(cse[2], r.err, 1, true)
      assert.are.equal("", r.out)
    end
    local secret = H.moonspan({"export", "otlp", "http://127.0.0.1:1"},
                              {db = db, env = {OTEL_EXPORTER_OTLP_HEADERS = "authorization=sk-secret-123%zz"}})
    assert.are.equal(2, secret.code)
    assert.matches("OTEL_EXPORTER_OTLP_HEADERS", secret.err, 1, true)
    assert.is_nil(secret.err:find("sk-secret", 1, true))
    local disabled = H.moonspan({"export", "otlp", "http://127.0.0.1:1"}, {db = db, env = {OTEL_SDK_DISABLED = "true"}})
    assert.are.equal(2, disabled.code)
    assert.matches("OTEL_SDK_DISABLED", disabled.err, 1, true)
    local env_bad = H.moonspan({"export", "otlp", "http://127.0.0.1:1"},
                               {db = db, env = {OTEL_EXPORTER_OTLP_TIMEOUT = "soon"}})
    assert.are.equal(2, env_bad.code)
    assert.matches("OTEL_EXPORTER_OTLP_TIMEOUT 'soon'", env_bad.err, 1, true)
    local help = H.moonspan({"export", "--help"}, {db = db})
    assert.are.equal(0, help.code)
    assert.matches("usage: moonspan export otlp", help.out, 1, true)
  end)

  it("exports a fold as one span with its repetitions, and a sampled-out trace as its summary", function()
    local dir = H.tmpdir("fold")
    local db = dir .. "/x.db"
    H.run_ok('trace("looped", function() for i = 1, 6 do span("step", function() end) end end)',
             {db = db, run_args = {"--fold", "2"}})
    H.run_ok('for i = 1, 30 do trace("sampled", function() span("inner", function() end) end) end',
             {db = db, run_args = {"--sample", "0.1"}})
    local rx = receiver("200")
    local r = export(db, {rx.url})
    rx.stop()
    assert.are.equal(0, r.code, r.err)
    local got = rx.spans()
    local fold
    for _, s in pairs(got) do
      if s.attributes["moonspan.kind"] == "fold" then fold = s end
    end
    assert.is_not_nil(fold, "no fold span exported")
    local stored = H.query(db, "SELECT fold_count, printf('%016x', span_id) AS id FROM spans WHERE kind = 'fold'")[1]
    assert.are.equal(stored.id, fold.spanId)
    assert.are.equal(int(stored.fold_count), fold.attributes["moonspan.fold.count"])
    local out_rows = H.query(db, "SELECT trace_id, span_count, CAST(start_ns AS TEXT) AS start_ns,"
                                 .. " CAST(start_ns + duration_ns AS TEXT) AS end_ns FROM traces"
                                 .. " WHERE sampled_out = 1")
    assert.is_true(#out_rows > 0, "no trace was sampled out")
    local summaries = {}
    for _, s in pairs(got) do
      if s.attributes["moonspan.sampled_out"] then summaries[s.traceId] = s end
    end
    for _, row in ipairs(out_rows) do
      local s = summaries[row.trace_id]
      assert.is_not_nil(s, "sampled-out trace " .. row.trace_id .. " not exported")
      assert.are.equal("sampled", s.name)
      assert.are.equal("", s.parentSpanId)
      assert.are.equal(row.start_ns, s.startTimeUnixNano)
      assert.are.equal(row.end_ns, s.endTimeUnixNano)
      assert.are.equal(int(row.span_count), s.attributes["moonspan.span_count"])
      assert.matches("^%x+$", s.spanId)
      assert.are_not.equal("0000000000000000", s.spanId)
    end
  end)
end)
