-- `moonspan serve --otlp`: OTLP/HTTP traces from other services into the
-- store, end to end. A real `moonspan serve` on a free loopback port; the
-- official OpenTelemetry JS SDK (tests/otel, installed by `make deps`) as
-- the client, and tests/otel/post.js for raw requests (bodies encoded to
-- protobuf with the official OTLP schema, responses decoded with it).
-- Then `show`, `report` and `sql` read what was stored.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local cjson = require "cjson"

local OTEL = H.root .. "/tests/otel"
local q = H.q

-- node and the npm packages are test dependencies: missing is a failure
local function need_node()
  local r = H.sh("command -v node")
  assert(r.code == 0, "node is missing: run `make deps`")
  assert(H.exists(OTEL .. "/node_modules/@opentelemetry/sdk-trace-base/package.json"),
         "tests/otel/node_modules is missing: run `make deps`")
end

-- servers started and not yet stopped: a failing test's are stopped after it
local running = {}

-- Starts `moonspan serve --otlp 127.0.0.1:0` into db; returns the server:
-- {pid, url, db, err (its stderr file)}. `shell`: sh commands run first
-- (limits for the server's process).
local function serve(db, extra, shell)
  local d = H.tmpdir("serve")
  local out, err = d .. "/out", d .. "/err"
  local pid = H.spawn(string.format("%s exec %s --db %s serve --otlp 127.0.0.1:0 %s >%s 2>%s", shell or "",
                                    q(H.bin), q(db), extra or "", q(out), q(err)))
  running[pid] = true
  local port = H.wait_match(out, "OTLP/HTTP on http://127%.0%.0%.1:(%d+)/v1/traces", 10)
  assert(port, "serve did not start: " .. (H.read(err) or ""))
  return {pid = pid, base = "http://127.0.0.1:" .. port, url = "http://127.0.0.1:" .. port .. "/v1/traces",
          db = db, err = err}
end

-- Stops the server with SIGTERM; returns its closing line.
local function stop(s)
  H.stop(s.pid, 15)
  running[s.pid] = nil
  return H.read(s.err) or ""
end

local function node(args)
  local r = H.sh("cd " .. q(OTEL) .. " && timeout 60 node " .. args)
  assert(r.code == 0, "node " .. args .. " failed: " .. r.err)
  return cjson.decode(r.out)
end

-- POSTs a body file: ctype, encoding ("gzip", another header value, or nil),
-- protobuf (encode the OTLP/JSON file as protobuf first).
local function post(url, ctype, file, encoding, protobuf)
  return node(string.format("post.js %s %s %s %s %s", q(url), q(ctype), q(file), q(encoding or "-"),
                            protobuf and "--protobuf" or ""))
end

local function sql(db, stmt)
  local r = H.moonspan({"sql", "--json", stmt}, {db = db})
  assert(r.code == 0, r.err)
  return cjson.decode(r.out)
end

-- sql as CSV rows of strings: 64-bit values exactly (JSON numbers are doubles here)
local function sql_csv(db, stmt)
  local r = H.moonspan({"sql", "--csv", stmt}, {db = db})
  assert(r.code == 0, r.err)
  local rows = {}
  for line in r.out:gmatch("[^\r\n]+") do
    local row = {}
    for cell in (line .. ","):gmatch("([^,]*),") do row[#row + 1] = cell end
    rows[#rows + 1] = row
  end
  table.remove(rows, 1)
  return rows
end

local function write_json(dir, name, t)
  return H.write(dir .. "/" .. name, type(t) == "string" and t or cjson.encode(t))
end

-- An OTLP/JSON request of the given spans under one resource.
local function request(spans, service)
  return {resourceSpans = {{
    resource = {attributes = {{key = "service.name", value = {stringValue = service or "svc"}}}},
    scopeSpans = {{scope = {name = "t"}, spans = spans}}}}}
end

local function attr(k, v)
  if math.type(v) == "integer" then return {key = k, value = {intValue = tostring(v)}} end
  if type(v) == "number" then return {key = k, value = {doubleValue = v}} end
  return {key = k, value = {stringValue = v}}
end

local T0 = 1767225600000000000
local function span(trace, id, parent, name, start_ms, end_ms, attrs, extra)
  local s = {traceId = trace, spanId = id, parentSpanId = parent, name = name, kind = 1,
             startTimeUnixNano = tostring(T0 + start_ms * 1000000),
             endTimeUnixNano = tostring(T0 + end_ms * 1000000), attributes = attrs}
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

describe("moonspan serve --otlp", function()
  local prices

  after_each(function()
    for pid in pairs(running) do
      os.execute("kill -KILL " .. pid .. " 2>/dev/null")
      running[pid] = nil
    end
  end)

  setup(function()
    need_node()
    -- a price of our own, so the costs below do not follow the shipped table
    prices = H.write(H.tmpdir("prices") .. "/prices.tsv", "gpt-4o*  2.00  8.00  1.00  -\noi-model  1.00  2.00  -  -\n")
  end)

  it("stores what the OpenTelemetry JS SDK sends with both exporters: tree, ids, times, tokens, cost, TTFT, errors",
     function()
    local db = H.tmpdir("sdk") .. "/s.db"
    local s = serve(db, "--prices " .. q(prices))
    local sent = {}
    sent.proto = node("send_genai.js " .. q(s.url) .. " proto")
    sent.json = node("send_genai.js " .. q(s.url) .. " json gzip")
    -- a 200 means stored: read while the server still runs
    for how, t in pairs(sent) do
      local rows = sql_csv(db, "SELECT name, printf('%016x', span_id), CASE WHEN parent_id IS NULL THEN ''"
                               .. " ELSE printf('%016x', parent_id) END, start_ns, start_ns + duration_ns FROM spans"
                               .. " WHERE trace_id = '" .. t.traceId .. "' ORDER BY span_index")
      assert.are.equal(4, #rows, how)
      for _, row in ipairs(rows) do
        local want = assert(t.spans[row[1]], how .. ": unexpected span " .. row[1])
        assert.are.same({want.spanId, want.parentSpanId or "", want.startNs, want.endNs},
                        {row[2], row[3], row[4], row[5]}, how .. " " .. row[1])
      end
      local show = cjson.decode(H.moonspan({"show", "--json", t.traceId}, {db = db}).out)
      assert.are.equal("invoke_agent planner", show.name)
      assert.are.equal("py-agent", show.attrs["service.name"])
      assert.are.equal(3, #show.spans[1].children)
      local by = {}
      for _, c in ipairs(show.spans[1].children) do by[c.name] = c end
      local chat = by["chat gpt-4o"]
      assert.are.equal("llm", chat.kind)
      assert.are.equal("openai", chat.provider)
      assert.are.equal("gpt-4o-2024-08-06", chat.model)
      -- input_tokens 1200 includes the 200 read from the cache; moonspan's input does not
      assert.are.same({1000, 310, 200, false}, {chat.input_tokens, chat.output_tokens, chat.cache_read_tokens,
                                                chat.usage_estimated})
      assert.is_true(math.abs(chat.cost_usd - (1000 * 2 + 310 * 8 + 200 * 1) / 1e6) < 1e-12)
      assert.are.equal(250, chat.ttft_ms)
      assert.are.equal("client", chat.attrs["span.kind"])
      assert.are.equal("[\"stop\"]", chat.attrs["gen_ai.response.finish_reasons"])
      assert.are.equal("span", by["execute_tool search"].kind)
      local bad = by["chat claude-sonnet-4-5"]
      assert.are.equal("error", bad.status)
      -- no exception.stacktrace was sent: no traceback, said as null
      assert.are.same({type = "timeout", message = "upstream timeout after 1.2 s", traceback = cjson.null}, bad.error)
      assert.are.equal("exception", bad.events[1].name)
      assert.is_true(bad.usage_estimated) -- no usage sent: not a 0 presented as fact
      assert.are.equal(cjson.null, bad.cost_usd)
    end
    local report = cjson.decode(H.moonspan({"report", "--json"}, {db = db}).out)
    assert.are.equal(2, report.requests.count)
    assert.are.equal(2000, report.tokens.total_input)
    assert.are.equal(2, report.errors.count)
    assert.are.equal("timeout", report.errors.top[1].type)
    local models = {}
    for _, m in ipairs(report.models) do models[m.model] = m end
    assert.are.equal(250, models["gpt-4o-2024-08-06"].ttft_ms.p50)
    assert.are.equal(2, models["claude-sonnet-4-5"].failed)
    local closing = stop(s)
    assert.matches("2 OTLP requests, 8 spans stored, 0 rejected", closing, 1, true)
  end)

  it("stores a request the same whether it comes as JSON, protobuf or gzip", function()
    local dir = H.tmpdir("same")
    local tr = "4bf92f3577b34da6a3ce929d0e0e4736"
    local file = write_json(dir, "req.json", request({
      span(tr, "00f067aa0ba902b7", nil, "agent", 0, 900, {attr("user.id", "u1"), attr("n", 3), attr("x", 0.5),
                                                          {key = "ok", value = {boolValue = true}},
                                                          {key = "tags", value = {arrayValue = {values = {
                                                            {stringValue = "a"}, {intValue = "2"}}}}}}),
      span(tr, "00f067aa0ba902b8", "00f067aa0ba902b7", "chat gpt-4o", 10, 800,
           {attr("gen_ai.operation.name", "chat"), attr("gen_ai.request.model", "gpt-4o"),
            attr("gen_ai.usage.input_tokens", 100), attr("gen_ai.usage.output_tokens", 20)},
           {events = {{timeUnixNano = tostring(T0 + 500000000), name = "chunk",
                       attributes = {attr("i", 1)}}}}),
    }, "svc-\u{e9}"))
    local shows = {}
    for _, how in ipairs({"json", "json+gzip", "protobuf", "protobuf+gzip"}) do
      local db = dir .. "/" .. how .. ".db"
      local s = serve(db, "--prices " .. q(prices))
      local r = post(s.url, how:match("^json") and "application/json" or "application/x-protobuf; charset=binary",
                     file, how:match("gzip") and "gzip", how:match("^protobuf"))
      assert.are.equal(200, r.status, r.body)
      stop(s)
      shows[how] = H.moonspan({"show", "--json", tr}, {db = db}).out
    end
    assert.are.equal(shows.json, shows["json+gzip"])
    assert.are.equal(shows.json, shows.protobuf)
    assert.are.equal(shows.json, shows["protobuf+gzip"])
    local show = cjson.decode(shows.json)
    -- user.id also as the root's user (the store's user column)
    assert.are.same({["user.id"] = "u1", user = "u1", n = 3, x = 0.5, ok = true, tags = "[\"a\",2]",
                     ["service.name"] = "svc-\u{e9}"}, show.attrs)
    local chat = show.spans[1].children[1]
    assert.are.same({100, 20}, {chat.input_tokens, chat.output_tokens})
    assert.is_true(math.abs(chat.cost_usd - (100 * 2 + 20 * 8) / 1e6) < 1e-12)
    assert.are.equal("chunk", chat.events[1].name)
  end)

  it("reads OpenInference and Langfuse attributes: kind, model, tokens, cost, TTFT", function()
    local dir = H.tmpdir("oi")
    local db = dir .. "/s.db"
    local tr = "0af7651916cd43dd8448eb211c80319c"
    local file = write_json(dir, "req.json", request({
      span(tr, "b7ad6b7169203331", nil, "pipeline", 0, 3000),
      span(tr, "b7ad6b7169203332", "b7ad6b7169203331", "ChatModel", 0, 1000,
           {attr("openinference.span.kind", "LLM"), attr("llm.model_name", "oi-model"),
            attr("llm.provider", "openai"), attr("llm.token_count.prompt", 500),
            attr("llm.token_count.completion", 50), attr("llm.token_count.prompt_details.cache_read", 100)}),
      span(tr, "b7ad6b7169203333", "b7ad6b7169203331", "generation", 1000, 2000,
           {attr("langfuse.observation.type", "generation"), attr("langfuse.observation.model.name", "lf-model"),
            attr("gen_ai.usage.input_tokens", 10), attr("gen_ai.usage.output_tokens", 5),
            attr("gen_ai.usage.cost", 0.125),
            attr("langfuse.observation.completion_start_time", "2026-01-01T00:00:01.300Z"),
            attr("langfuse.session.id", "s-42"), attr("user.id", "alice"),
            {key = "langfuse.trace.tags", value = {arrayValue = {values = {{stringValue = "beta"},
                                                                          {stringValue = "eu"}}}}}}),
      -- a tool by its own word, though it names a model: not an llm call
      span(tr, "b7ad6b7169203334", "b7ad6b7169203331", "tool", 2000, 2100,
           {attr("openinference.span.kind", "TOOL"), attr("llm.model_name", "oi-model")}),
    }))
    local s = serve(db, "--prices " .. q(prices))
    assert.are.equal(200, post(s.url, "application/json", file).status)
    stop(s)
    local show = cjson.decode(H.moonspan({"show", "--json", tr}, {db = db}).out)
    local by = {}
    for _, c in ipairs(show.spans[1].children) do by[c.name] = c end
    local oi = by.ChatModel
    assert.are.same({"llm", "openai", "oi-model", 400, 50, 100}, {oi.kind, oi.provider, oi.model, oi.input_tokens,
                                                                 oi.output_tokens, oi.cache_read_tokens})
    -- priced from the table: cache reads at the input price ("-")
    assert.is_true(math.abs(oi.cost_usd - (400 * 1 + 50 * 2 + 100 * 1) / 1e6) < 1e-12)
    local lf = by.generation
    assert.are.same({"llm", "lf-model", 0.125, 300}, {lf.kind, lf.model, lf.cost_usd, lf.ttft_ms})
    assert.are.equal("span", by.tool.kind)
    -- who the trace was for: the store's session, user and tags, so --user and --by user cover it
    assert.are.same({{session = "s-42", user_id = "alice", tags = "[\"beta\",\"eu\"]"}},
                    sql(db, "SELECT session, user_id, tags FROM traces"))
    local listed = cjson.decode(H.moonspan({"traces", "--user", "alice", "--json"}, {db = db}).out)
    assert.are.equal(1, #listed)
    assert.are.equal(tr, listed[1].trace_id)
  end)

  it("answers partial success for spans it rejects, and stores the rest", function()
    local dir = H.tmpdir("partial")
    local db = dir .. "/s.db"
    local tr = "5b8efff798038103d269b633813fc60c"
    local file = write_json(dir, "req.json", request({
      span(tr, "eee19b7ec3c1b174", nil, "root", 0, 100),
      span(tr, "eee19b7ec3c1b174", nil, "same id again", 0, 50),     -- a repeated span id
      span(tr, "eee19b7ec3c1b175", "eee19b7ec3c1b174", "", 0, 50),   -- no name
      span(tr, "eee19b7ec3c1b176", "eee19b7ec3c1b174", "backwards", 50, 10), -- ends before it starts
      span("00000000000000000000000000000000", "eee19b7ec3c1b177", nil, "zero trace id", 0, 1),
      -- a cycle: each the other's parent
      span(tr, "eee19b7ec3c1b178", "eee19b7ec3c1b179", "cycle a", 0, 1),
      span(tr, "eee19b7ec3c1b179", "eee19b7ec3c1b178", "cycle b", 0, 1),
    }))
    local s = serve(db)
    local r = post(s.url, "application/x-protobuf", file, nil, true)
    assert.are.equal(200, r.status)
    assert.are.equal("6", r.decoded.partialSuccess.rejectedSpans)
    -- the first reason met, in the order the spans came
    assert.are.equal("a span without a name", r.decoded.partialSuccess.errorMessage)
    r = post(s.url, "application/json", file)
    assert.are.equal(200, r.status)
    local ps = cjson.decode(r.body).partialSuccess
    assert.are.equal("6", ps.rejectedSpans)
    assert.are.equal("a span without a name", ps.errorMessage)
    local closing = stop(s)
    assert.matches("2 OTLP requests, 2 spans stored, 12 rejected", closing, 1, true)
    assert.are.same({{name = "root"}, {name = "root"}}, sql(db, "SELECT name FROM spans"))
  end)

  it("stores a subtree whose parent is elsewhere as its own row, the parent kept", function()
    local dir = H.tmpdir("orphan")
    local db = dir .. "/s.db"
    local tr = "a3ce929d0e0e47364bf92f3577b34da6"
    local file = write_json(dir, "req.json", request({
      span(tr, "1000000000000001", "0000000000000abc", "server part", 0, 100),
      span(tr, "1000000000000002", "1000000000000001", "inner", 10, 20),
    }))
    local s = serve(db)
    assert.are.equal(200, post(s.url, "application/json", file).status)
    stop(s)
    assert.are.same({{"server part", "0000000000000abc", "2"}},
                    sql_csv(db, "SELECT name, printf('%016x', parent_span), span_count FROM traces"))
  end)

  it("refuses with the Collector's statuses and stores nothing: 415, 400, 413, 404, 405", function()
    local dir = H.tmpdir("refuse")
    local db = dir .. "/s.db"
    local good = write_json(dir, "good.json", request({span("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7",
                                                            nil, "x", 0, 1)}))
    local big = write_json(dir, "big.json", request({span("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7",
                                                           nil, string.rep("n", 3000), 0, 1)}))
    local s = serve(db, "--max-body 2048")
    local r = post(s.url, "text/plain", good)
    assert.are.equal(415, r.status)
    assert.matches("application/x%-protobuf or application/json", cjson.decode(r.body).message)
    r = post(s.url, "application/json", good, "br")
    assert.are.equal(415, r.status)
    assert.matches("Content%-Encoding", cjson.decode(r.body).message)
    r = post(s.url, "application/json", write_json(dir, "trunc.json", '{"resourceSpans":[{"scopeSpans":['))
    assert.are.equal(400, r.status)
    assert.are.equal(3, cjson.decode(r.body).code)
    assert.matches("not OTLP JSON", cjson.decode(r.body).message)
    r = post(s.url, "application/json", write_json(dir, "hex.json", request({span("zz", "00", nil, "x", 0, 1)})))
    assert.are.equal(400, r.status)
    r = post(s.url, "application/x-protobuf", H.write(dir .. "/junk.bin", "\x0a\xff\xff\xff\x0f\x01"))
    assert.are.equal(400, r.status)
    assert.are.equal("application/x-protobuf", r.contentType)
    r = post(s.url, "application/x-protobuf", good, "gzip") -- gzip of JSON text: not protobuf
    assert.are.equal(400, r.status)
    r = post(s.url, "application/x-protobuf", good, "gzip-but-not") -- declared, not sent
    assert.are.equal(415, r.status)
    assert.are.equal(200, post(s.url, "application/json", good).status)
    r = post(s.url, "application/json", big) -- the server's bound (serve.c)
    assert.are.equal(413, r.status)
    -- 2 KB limit, counted inflated: a small gzip body that inflates past it
    r = post(s.url, "application/json", big, "gzip")
    assert.are.equal(413, r.status)
    assert.matches("--max-body", cjson.decode(r.body).message, 1, true)
    r = post(s.base .. "/v1/metrics", "application/json", good)
    assert.are.equal(404, r.status)
    local get = H.sh("cd " .. q(OTEL) .. " && node -e " .. q(
      "require('http').get(process.argv[1], r => { console.log(r.statusCode); process.exit(0) })")
      .. " " .. q(s.url))
    assert.are.equal("405", (get.out:gsub("%s+$", "")))
    stop(s)
    assert.are.same({{n = 1}}, sql(db, "SELECT count(*) AS n FROM spans"))
  end)

  it("answers 503 with Retry-After when the store cannot take the spans, and stores them once it can",
     function()
    local dir = H.tmpdir("full")
    local db = dir .. "/s.db"
    -- a disk that is full past 2 MB: the server's files may not grow
    -- beyond it (ulimit -f, in 512- or 1024-byte blocks as sh counts them;
    -- SIGXFSZ ignored, so a write past it fails as on a full disk)
    local s = serve(db, "--max-body 20000000", "trap '' XFSZ; ulimit -f 2048;")
    local trace = "5bf92f3577b34da6a3ce929d0e0e4736"
    local spans = {span(trace, "10f067aa0ba902b7", nil, "root", 0, 100)}
    for i = 1, 60 do -- 60 distinct 100 KB attributes: ~6 MB to write
      spans[#spans + 1] = span(trace, string.format("20f067aa0ba9%04x", i), "10f067aa0ba902b7", "step", i, i + 1,
                               {attr("blob", string.format("%06d", i) .. string.rep(string.char(97 + i % 26), 100000))})
    end
    local big = write_json(dir, "big.json", request(spans))
    local t0 = moonspan.now_ms()
    local r = post(s.url, "application/json", big)
    local waited = moonspan.now_ms() - t0
    assert.are.equal(503, r.status, r.body)
    assert.are.equal("5", r.retryAfter)
    assert.are.equal("application/json", r.contentType)
    local st = cjson.decode(r.body)
    assert.are.equal(14, st.code) -- UNAVAILABLE
    assert.matches("could not be stored .*retry after 5 s", st.message)
    assert.is_true(waited >= 4500 and waited < 9500, "answered after " .. waited .. " ms")
    -- protobuf gets its Status as protobuf, with the same header
    r = post(s.url, "application/x-protobuf", big, nil, true)
    assert.are.equal(503, r.status)
    assert.are.equal("5", r.retryAfter)
    assert.are.equal("application/x-protobuf", r.contentType)
    -- the store takes a small request: nothing of the refused ones is in it
    local small = write_json(dir, "small.json", request({span("6bf92f3577b34da6a3ce929d0e0e4736",
                                                              "30f067aa0ba902b7", nil, "small", 0, 1)}))
    r = post(s.url, "application/json", small)
    assert.are.equal(200, r.status, r.body)
    assert.are.equal(cjson.null, r.retryAfter)
    local closing = stop(s)
    assert.matches("3 OTLP requests, 1 spans stored, 0 rejected, 2 requests refused", closing, 1, true)
    assert.are.same({{name = "small"}}, sql(db, "SELECT name FROM traces"))
  end)

  it("serves --otlp and --metrics together: what it receives is in the next scrape", function()
    local dir = H.tmpdir("both")
    local db = dir .. "/s.db"
    local s = serve(db, "--metrics 127.0.0.1:0")
    local mport
    local deadline = moonspan.now_ms() + 10000
    while not mport and moonspan.now_ms() < deadline do
      mport = (H.read(s.err) or ""):match("http://127%.0%.0%.1:(%d+)/metrics")
      if not mport then moonspan.sleep_ms(20) end
    end
    assert(mport, "no metrics address: " .. (H.read(s.err) or ""))
    node("send_genai.js " .. q(s.url) .. " proto")
    local scrape = H.sh("cd " .. q(OTEL) .. " && timeout 20 node -e " .. q(
      "require('http').get(process.argv[1], r => { let b = ''; r.on('data', c => b += c);"
      .. " r.on('end', () => { console.log(b); process.exit(0) }) })") .. " " .. q("http://127.0.0.1:" .. mport .. "/metrics"))
    stop(s)
    assert.matches('moonspan_requests_total{trace_name="invoke_agent planner",status="ok"} 1', scrape.out, 1, true)
  end)

  it("rejects a bad command line with exit 2 and a message naming the fix", function()
    local r = H.moonspan({"serve"}, {db = H.tmpdir("cli") .. "/s.db"})
    assert.are.equal(2, r.code)
    assert.matches("--otlp HOST:PORT to receive traces", r.err, 1, true)
    r = H.moonspan({"serve", "--otlp", "127.0.0.1"}, {db = H.tmpdir("cli") .. "/s.db"})
    assert.are.equal(2, r.code)
    assert.matches("not HOST:PORT", r.err, 1, true)
    r = H.moonspan({"serve", "--otlp", "127.0.0.1:4318", "--max-body", "10"}, {db = H.tmpdir("cli") .. "/s.db"})
    assert.are.equal(2, r.code)
    assert.matches("--max-body", r.err, 1, true)
    local s = serve(H.tmpdir("busy") .. "/s.db")
    local port = s.url:match(":(%d+)/")
    r = H.moonspan({"serve", "--otlp", "127.0.0.1:" .. port}, {db = H.tmpdir("cli") .. "/s.db"})
    stop(s)
    assert.are.equal(2, r.code)
    assert.matches("cannot listen on 127.0.0.1:" .. port, r.err, 1, true)
    r = H.moonspan({"serve", "--help"})
    assert.are.equal(0, r.code)
    assert.matches("usage: moonspan serve [--otlp HOST:PORT", r.out, 1, true)
  end)
end)
