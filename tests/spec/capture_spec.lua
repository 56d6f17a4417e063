-- Content capture and redaction: prompts and answers are stored only when
-- asked (--capture-content, capture = true), and secrets planted in
-- prompts, answers, error messages, attributes and events (an sk- key, a
-- bearer token, an e-mail address, a pattern of the user's own) reach
-- neither the store (its file bytes and WAL), nor the --log-file, nor
-- stdout and stderr, nor the views; the redaction markers do.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local fake = dofile(here .. "fake_server.lua").start(H)
local cjson = require "cjson"

teardown(function() fake.stop() end)

local function rand(n, alphabet)
  alphabet = alphabet or "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
  local t = {}
  for i = 1, n do
    local k = math.random(1, #alphabet)
    t[i] = alphabet:sub(k, k)
  end
  return table.concat(t)
end

-- distinct random values: never found by chance
local SECRETS = {
  api_key = "sk-proj-" .. rand(32),
  bearer = rand(28),
  email = "j" .. rand(8, "abcdefghijklmnopqrstuvwxyz") .. "@corp-" .. rand(6, "abcdefghijklmnopqrstuvwxyz") .. ".example.com",
  custom = "ACME-" .. rand(8, "0123456789"),
}
local PROMPT_WORD = "promptword" .. rand(12, "abcdefghijklmnopqrstuvwxyz") -- in a prompt, no secret
local ANSWER_WORD = "answerword" .. rand(12, "abcdefghijklmnopqrstuvwxyz")
local REFUSED_WORD = "refusedword" .. rand(12, "abcdefghijklmnopqrstuvwxyz") -- a capture = false call's

local ENV = fake.env{OPENAI_API_KEY = "test-key", OPENAI_BASE_URL = fake.url, K = SECRETS.api_key,
                    B = SECRETS.bearer, E = SECRETS.email, C = SECRETS.custom, PW = PROMPT_WORD,
                    AW = ANSWER_WORD, RW = REFUSED_WORD}

local SCRIPT = [[
local K, B, E, C = os.getenv("K"), os.getenv("B"), os.getenv("E"), os.getenv("C")
local PW, AW, RW = os.getenv("PW"), os.getenv("AW"), os.getenv("RW")
trace("chat", function(ctx)
  llm.call{model = "mock", system = "You work for " .. E,
    messages = {{role = "user", content = PW .. " my key is " .. K .. " and Authorization: Bearer " .. B},
                {role = "assistant", content = "noted"},
                {role = "user", content = "ticket " .. C}},
    mock = {reply = AW .. " write to " .. E .. " about " .. C .. " with key " .. K}}
  llm.call{model = "gpt-4o", stream = true, messages = {{role = "user", content = "stream " .. PW .. " " .. C}}}
  llm.call{model = "mock", capture = false, messages = {{role = "user", content = RW}}}
  span("tool", function(s)
    s:set("note", "called with " .. K .. " for " .. E)
    s:event("sent", {header = "Bearer " .. B, ticket = C})
  end)
  pcall(span, "failing", function() error("could not reach " .. E .. " using " .. K .. " on " .. C) end)
  pcall(span, "typed", function() error({type = "denied " .. K, message = "typed failure"}) end)
  ctx:add_error("manual: token=" .. B .. B, "auth")
end)
trace("big", function()
  llm.call{model = "mock", messages = {{role = "user", content = string.rep("wörds ", 7000)}}, mock = {reply = "ok"}}
end)
error("fatal, key " .. K .. " of " .. E) -- uncaught: the message goes to stderr
]]

local function leaks(text) return H.leaks(SECRETS, text) end

-- The decoded store: every span's attributes, errors and events, as text.
local function decoded(db)
  local r = H.moonspan({"sql", "--json", "SELECT s.name, s.attrs, s.error_message, s.error_traceback, "
                        .. "(SELECT group_concat(coalesce(e.attrs, '') || coalesce(e.error_message, ''), ' ') "
                        .. " FROM span_events e WHERE e.trace_row = s.trace_row AND e.span_id = s.span_id) AS events "
                        .. "FROM spans s"}, {db = db})
  assert(r.code == 0, r.err)
  return r.out
end

local function views(db)
  local out = {}
  for _, args in ipairs({{"report"}, {"report", "--json"}, {"traces"}, {"traces", "--json"}}) do
    local v = H.moonspan(args, {db = db})
    out[#out + 1] = v.out .. v.err
  end
  for _, row in ipairs(H.query(db, "SELECT trace_id FROM traces")) do
    for _, args in ipairs({{"show", "--all", row.trace_id}, {"show", "--json", row.trace_id}}) do
      local v = H.moonspan(args, {db = db})
      out[#out + 1] = v.out .. v.err
    end
  end
  return table.concat(out, "\n")
end

local function run_with(run_args)
  local dir = H.tmpdir("capture")
  local args = {"--log-file", dir .. "/run.jsonl"}
  for _, a in ipairs(run_args) do args[#args + 1] = a end
  local r = H.run_script(SCRIPT, {dir = dir, env = ENV, quiet = false, run_args = args})
  r.log = H.read(dir .. "/run.jsonl") or ""
  r.bytes = H.read(r.db) .. (H.read(r.db .. "-wal") or "")
  r.decoded = decoded(r.db)
  r.views = views(r.db)
  return r
end

local captured = H.once(function() return run_with({"--capture-content", "--redact", "ACME-[0-9]{8}"}) end)
local plain = H.once(function() return run_with({}) end)

local function attr(db, name, key)
  local rows = H.query(db, "SELECT json_extract(s.attrs, '$.\"" .. key .. "\"') AS v FROM spans s "
                           .. "WHERE s.name = '" .. name .. "' ORDER BY s.trace_row, s.span_index")
  local out = {} -- the spans that have it
  for _, r in ipairs(rows) do out[#out + 1] = r.v end
  return out
end

describe("--capture-content with --redact and --log-file", function()
  it("ran the script to its uncaught error, with the secrets in it", function()
    local r = captured()
    assert.are.equal(1, r.code, r.err)
    assert.is_truthy(r.err:find("fatal, key [REDACTED:api_key] of [REDACTED:email]", 1, true), r.err)
  end)

  it("stores the prompt and the answer in the GenAI shape, redacted", function()
    local r = captured()
    local input = cjson.decode(attr(r.db, "chat mock", "gen_ai.input.messages")[1])
    assert.are.equal(3, #input)
    assert.are.equal("user", input[1].role)
    assert.are.same({{type = "text", content = PROMPT_WORD .. " my key is [REDACTED:api_key] and "
                      .. "Authorization: Bearer [REDACTED:bearer]"}}, input[1].parts)
    assert.are.same({role = "assistant", parts = {{type = "text", content = "noted"}}}, input[2])
    assert.are.equal("ticket [REDACTED:pattern]", input[3].parts[1].content)
    local system = cjson.decode(attr(r.db, "chat mock", "gen_ai.system_instructions")[1])
    assert.are.same({{type = "text", content = "You work for [REDACTED:email]"}}, system)
    local output = cjson.decode(attr(r.db, "chat mock", "gen_ai.output.messages")[1])
    assert.are.same({{role = "assistant", finish_reason = "stop", parts = {{type = "text",
      content = ANSWER_WORD .. " write to [REDACTED:email] about [REDACTED:pattern] with key [REDACTED:api_key]"}}}},
      output)
  end)

  it("stores a streamed answer as its assembled text", function()
    local r = captured()
    local output = cjson.decode(attr(r.db, "chat gpt-4o", "gen_ai.output.messages")[1])
    assert.are.equal("Hello from OpenAI streaming!", output[1].parts[1].content)
    local input = cjson.decode(attr(r.db, "chat gpt-4o", "gen_ai.input.messages")[1])
    assert.are.equal("stream " .. PROMPT_WORD .. " [REDACTED:pattern]", input[1].parts[1].content)
  end)

  it("stores nothing of a call made with capture = false", function()
    local r = captured()
    assert.is_falsy(r.decoded:find(REFUSED_WORD, 1, true))
    assert.is_falsy(r.bytes:find(REFUSED_WORD, 1, true))
    assert.are.equal(2, #attr(r.db, "chat mock", "gen_ai.input.messages")) -- of 3 mock calls
  end)

  it("cuts an attribute at 16 KiB, still JSON, saying how much was left out", function()
    local r = captured()
    local json = attr(r.db, "chat mock", "gen_ai.input.messages")[2]
    assert.is_true(#json <= 16384, #json)
    assert.is_true(#json > 15000, #json)
    local text = cjson.decode(json)[1].parts[1].content
    local kept, cut = text:match("^(.-) %[truncated: (%d+) bytes%]$")
    assert.is_truthy(kept, text:sub(-80))
    assert.are.equal(#string.rep("wörds ", 7000), #kept + tonumber(cut))
    assert.is_truthy(utf8.len(kept), "cut inside a character")
  end)

  it("masks the secrets in attributes, events, errors and ctx:add_error", function()
    local d = captured().decoded
    assert.is_truthy(d:find("called with [REDACTED:api_key] for [REDACTED:email]", 1, true), d)
    assert.is_truthy(d:find("Bearer [REDACTED:bearer]", 1, true), d)
    assert.is_truthy(d:find("could not reach [REDACTED:email] using [REDACTED:api_key] on [REDACTED:pattern]", 1, true), d)
    assert.is_truthy(d:find("manual: token=[REDACTED:secret]", 1, true), d)
  end)

  it("leaves no secret in the store file, the log, stdout, stderr or the views", function()
    local r = captured()
    assert.are.same({}, leaks(r.bytes))
    assert.are.same({}, leaks(r.decoded))
    assert.are.same({}, leaks(r.log))
    assert.are.same({}, leaks(r.out))
    assert.are.same({}, leaks(r.err))
    assert.are.same({}, leaks(r.views))
    -- and these searches find what is there: the prompt's own word is in
    -- the file's bytes and the views
    assert.is_truthy(r.bytes:find(PROMPT_WORD, 1, true))
    assert.is_truthy(r.views:find(PROMPT_WORD, 1, true))
  end)

  it("shows an excerpt under the llm span, and the whole text in --json and sql", function()
    local r = captured()
    local id = H.scalar(r.db, "SELECT trace_id FROM traces WHERE name = 'chat'")
    local show = H.moonspan({"show", "--all", id}, {db = r.db})
    assert.are.equal(0, show.code, show.err)
    assert.is_truthy(show.out:find("\n    input   user: ticket [REDACTED:pattern]\n", 1, true), show.out)
    assert.is_truthy(show.out:find("\n    output  " .. ANSWER_WORD .. " write to [REDACTED:email]", 1, true), show.out)
    assert.is_truthy(show.out:find("output  Hello from OpenAI streaming!", 1, true), show.out)
    local j = H.json(H.moonspan({"show", "--json", id}, {db = r.db}).out)
    local found -- spans nest under their parent's children
    local function walk(list)
      for _, s in ipairs(list or {}) do
        if s.attrs and s.attrs["gen_ai.output.messages"] and s.name == "chat mock" then found = s end
        walk(s.children)
      end
    end
    walk(j.spans)
    assert.is_truthy(found)
    assert.are.equal(ANSWER_WORD, cjson.decode(found.attrs["gen_ai.output.messages"])[1].parts[1].content:match("^%S+"))
  end)

  it("writes one OpenTelemetry log record per ended span and per error, ids as stored", function()
    local r = captured()
    local records, by_span, errors = {}, {}, {}
    for line in r.log:gmatch("[^\n]+") do
      local rec = cjson.decode(line)
      records[#records + 1] = rec
      if rec.eventName == "moonspan.span.end" then by_span[rec.spanId] = rec end
      if rec.eventName == "moonspan.error" then errors[#errors + 1] = rec end
    end
    local spans = H.query(r.db, "SELECT t.trace_id, printf('%016x', s.span_id) AS id, s.name, s.status, "
                                .. "printf('%d', s.start_ns) AS start FROM spans s JOIN traces t ON s.trace_row = t.id")
    local n = 0
    for _, s in ipairs(spans) do
      local rec = by_span[s.id]
      assert.is_truthy(rec, "no record for span " .. s.name)
      n = n + 1
      assert.are.equal(s.trace_id, rec.traceId)
      -- and under the names OpenTelemetry gives JSON logs that are not OTLP
      assert.are.equal(s.trace_id, rec.trace_id)
      assert.are.equal(s.id, rec.span_id)
      assert.are.equal("01", rec.trace_flags)
      assert.are.equal(1, rec.flags)
      assert.are.equal(s.name, rec.attributes["moonspan.span.name"])
      assert.are.equal(s.status, rec.attributes["moonspan.span.status"])
      assert.are.equal(s.start, rec.attributes["moonspan.span.start_time_unix_nano"])
      assert.are.equal(s.status == "ok" and "INFO" or "WARN", rec.severityText)
      assert.are.equal(s.status == "ok" and 9 or 13, rec.severityNumber)
      assert.is_truthy(rec.timeUnixNano:match("^%d+$") and rec.observedTimeUnixNano:match("^%d+$"))
    end
    -- the failing span's error, ctx:add_error's, and the uncaught one on the run trace
    assert.are.equal(n + #errors, #records)
    local messages = {}
    for _, e in ipairs(errors) do
      assert.is_truthy(e.trace_id:match("^%x+$") and #e.trace_id == 32 and e.trace_id == e.traceId)
      assert.is_truthy(#e.span_id == 16 and e.span_id == e.spanId and e.trace_flags == "01")
      assert.are.equal("ERROR", e.severityText)
      assert.are.equal(17, e.severityNumber)
      messages[#messages + 1] = e.attributes["exception.message"]
    end
    local all = table.concat(messages, "\n")
    assert.is_truthy(all:find("could not reach [REDACTED:email] using [REDACTED:api_key]", 1, true), all)
    assert.is_truthy(all:find("manual: token=[REDACTED:secret]", 1, true), all)
    -- the llm span's record carries usage and the captured content
    local llm
    for _, rec in pairs(by_span) do
      if rec.attributes["moonspan.span.name"] == "chat gpt-4o" then llm = rec end
    end
    assert.are.equal("openai", llm.attributes["gen_ai.provider.name"])
    assert.is_true(llm.attributes["gen_ai.usage.output_tokens"] > 0)
    assert.is_truthy(llm.attributes["gen_ai.output.messages"]:find("Hello from OpenAI streaming!", 1, true))
  end)
end)

-- What the receiver's log (one decoded request a line) says of the content:
-- the chat's captured input on its span (found) and on its log record
-- (logged), the failing span's error.type, whether the errors metric
-- counts the masked type, the paths asked, the last content type.
local function otlp_content(body)
  local s = {paths = {}}
  local seen = {}
  for line in body:gmatch("[^\n]+") do
    local req = cjson.decode(line)
    s.ctype = req.contentType
    if not seen[req.path] then
      seen[req.path] = true
      s.paths[#s.paths + 1] = req.path
    end
    for _, rs in ipairs(req.body or {}) do
      for _, ss in ipairs(rs.scopeSpans or {}) do
        for _, sp in ipairs(ss.spans) do
          local m = sp.attributes["gen_ai.input.messages"]
          if sp.name == "chat mock" and m then s.found = s.found or cjson.decode(m) end
          if sp.name == "typed" then s.typed = sp.attributes["error.type"] end
        end
      end
      for _, sl in ipairs(rs.scopeLogs or {}) do
        for _, rec in ipairs(sl.logRecords) do
          local m = rec.attributes["gen_ai.input.messages"]
          if rec.attributes["moonspan.span.name"] == "chat mock" and m then s.logged = s.logged or cjson.decode(m) end
        end
      end
      for _, sm in ipairs(rs.scopeMetrics or {}) do
        for _, metric in ipairs(sm.metrics) do
          for _, p in ipairs(metric.points) do
            if metric.name == "moonspan.errors" and p.attributes["error.type"] == "denied [REDACTED:api_key]" then
              s.metric_typed = true
            end
          end
        end
      end
    end
  end
  table.sort(s.paths)
  return s
end

describe("moonspan export otlp of a captured store", function()
  for _, protocol in ipairs({"http/protobuf", "http/json"}) do
    it("sends the content as GenAI attributes, with no secret in the payload (" .. protocol .. ")", function()
      local r = captured()
      -- the OTLP test receiver (tests/otel/receiver.js) decodes protobuf with
      -- the official schema, or JSON, and logs each request as JSON
      local dir = H.tmpdir("capture-otlp")
      local port_file, log = dir .. "/port", dir .. "/log"
      local pipe = assert(io.popen("exec node " .. H.q(H.root .. "/tests/otel/receiver.js") .. " --port-file "
                                   .. H.q(port_file) .. " --log " .. H.q(log) .. " --answers 200 >"
                                   .. H.q(dir .. "/out") .. " 2>&1", "w"))
      assert(H.wait_file(port_file, 15), "the OTLP test receiver did not start: " .. (H.read(dir .. "/out") or ""))
      local url = "http://127.0.0.1:" .. H.read(port_file):gsub("%s+", "")
      local ex = H.moonspan({"export", "otlp", url, "--protocol", protocol, "--signals", "traces,metrics,logs"},
                            {db = r.db})
      pipe:close()
      assert.are.equal(0, ex.code, ex.err)
      local body = H.read(log) or ""
      assert.are.same({}, leaks(body .. ex.out .. ex.err))
      local s = otlp_content(body)
      assert.are.equal(protocol == "http/json" and "application/json" or "application/x-protobuf", s.ctype)
      assert.is_truthy(s.found, body:sub(1, 400))
      assert.are.equal(PROMPT_WORD .. " my key is [REDACTED:api_key] and Authorization: Bearer [REDACTED:bearer]",
                       s.found[1].parts[1].content)
      assert.are.equal("denied [REDACTED:api_key]", s.typed) -- a secret in an error's type
      assert.are.same(s.found, s.logged) -- the log record of the call carries the same redacted content
      assert.is_true(s.metric_typed, "no errors metric with the masked type") -- and the metrics' error.type
    end)
  end
end)

describe("run --export otlp with metrics and logs, capturing content", function()
  it("sends no secret in any signal's payload, while the run sends them", function()
    local dir = H.tmpdir("capture-live")
    local port_file, log = dir .. "/port", dir .. "/log"
    local pipe = assert(io.popen("exec node " .. H.q(H.root .. "/tests/otel/receiver.js") .. " --port-file "
                                 .. H.q(port_file) .. " --log " .. H.q(log) .. " --answers 200 >"
                                 .. H.q(dir .. "/out") .. " 2>&1", "w"))
    assert(H.wait_file(port_file, 15), "the OTLP test receiver did not start: " .. (H.read(dir .. "/out") or ""))
    local url = "http://127.0.0.1:" .. H.read(port_file):gsub("%s+", "")
    local env = {OTEL_METRICS_EXPORTER = "otlp", OTEL_LOGS_EXPORTER = "otlp"}
    for k, v in pairs(ENV) do env[k] = v end
    local r = H.run_script(SCRIPT, {dir = dir, env = env, quiet = false,
                                    run_args = {"--capture-content", "--redact", "ACME-[0-9]{8}",
                                                "--export", "otlp=" .. url}})
    pipe:close()
    assert.are.equal(1, r.code, r.err) -- the script's uncaught error
    local body = H.read(log) or ""
    assert.are.same({}, leaks(body .. r.out .. r.err))
    local s = otlp_content(body)
    assert.are.same({"/v1/logs", "/v1/metrics", "/v1/traces"}, s.paths)
    assert.are.equal(PROMPT_WORD .. " my key is [REDACTED:api_key] and Authorization: Bearer [REDACTED:bearer]",
                     s.found[1].parts[1].content)
    assert.are.same(s.found, s.logged)
    assert.are.equal("denied [REDACTED:api_key]", s.typed)
    assert.is_true(s.metric_typed, "no errors metric with the masked type")
  end)
end)

describe("moonspan serve --metrics of a captured store", function()
  it("has no secret in /metrics: an error type that held one is its masked form", function()
    local r = captured()
    local errf = r.dir .. "/metrics.err"
    local pid = H.spawn("exec " .. H.q(H.bin) .. " --db " .. H.q(r.db) .. " serve --metrics 127.0.0.1:0 2>" .. H.q(errf))
    local port = H.wait_match(errf, "http://127%.0%.0%.1:(%d+)/metrics", 10)
    local scrape = port and H.sh("curl -sS --max-time 10 http://127.0.0.1:" .. port .. "/metrics")
    H.stop(pid, 10)
    assert(port, "serve --metrics did not start: " .. (H.read(errf) or ""))
    assert.are.equal(0, scrape.code, scrape.err)
    assert.are.same({}, leaks(scrape.out))
    assert.is_truthy(scrape.out:find('moonspan_errors_total{error_type="denied [REDACTED:api_key]"} 1\n', 1, true),
                     scrape.out)
  end)
end)

describe("without --capture-content", function()
  it("stores nothing of the prompts and answers", function()
    local r = plain()
    assert.are.equal(1, r.code, r.err)
    assert.is_falsy(r.bytes:find(PROMPT_WORD, 1, true))
    assert.is_falsy(r.bytes:find(ANSWER_WORD, 1, true))
    assert.is_falsy(r.decoded:find("gen_ai.input.messages", 1, true))
    assert.is_falsy(r.views:find(PROMPT_WORD, 1, true))
  end)

  it("still masks every error; attribute values are stored as set (so the byte search above can fail)", function()
    local r = plain()
    assert.is_truthy(r.decoded:find("could not reach [REDACTED:email] using [REDACTED:api_key]", 1, true))
    assert.are.same({"custom"}, leaks(r.err)) -- no --redact: the user's pattern is not masked
    -- s:set text is not scanned when nothing asked for redaction (the hot path):
    assert.is_truthy(r.bytes:find(SECRETS.api_key, 1, true), "the raw bytes search does not see stored text")
    assert.is_truthy(r.log:find(SECRETS.api_key, 1, true))
  end)

  it("keeps a trace's user, session and tags as given, so --user finds them", function()
    local r = H.run_script([[
      trace("t", {user = "ann@example.com", session = "s-ann@example.com", tags = {"t@example.com"}}, function(ctx)
        ctx:set("contact", "ann@example.com")
      end)
    ]], {run_args = {"--capture-content"}})
    assert.are.equal(0, r.code, r.err)
    local t = H.moonspan({"traces", "--json", "--user", "ann@example.com", "--session", "s-ann@example.com",
                          "--tag", "t@example.com"}, {db = r.db})
    assert.are.equal(0, t.code, t.err)
    assert.are.equal(1, #H.json(t.out), t.out)
    local attrs = cjson.decode(H.scalar(r.db, "SELECT attrs FROM traces"))
    assert.are.equal("[REDACTED:email]", attrs.contact) -- any other attribute is masked
  end)

  it("captures with MOONSPAN_CAPTURE_CONTENT=1, and capture = true on one call", function()
    local src = [[
      llm.call{model = "mock", messages = {{role = "user", content = "one"}}}
      llm.call{model = "mock", capture = true, messages = {{role = "user", content = "two"}}}
    ]]
    local env = H.run_script(src, {env = {MOONSPAN_CAPTURE_CONTENT = "1"}})
    assert.are.equal(0, env.code, env.err)
    assert.are.equal(2, #attr(env.db, "chat mock", "gen_ai.input.messages"))
    local one = H.run_script(src)
    assert.are.equal(0, one.code, one.err)
    local got = attr(one.db, "chat mock", "gen_ai.input.messages")
    assert.are.equal(1, #got)
    assert.are.equal("two", cjson.decode(got[1])[1].parts[1].content)
  end)
end)

describe("moonspan eval --capture-content", function()
  it("stores and prints a case's prompt, answer and error redacted", function()
    local dir = H.tmpdir("capture-eval")
    local log = dir .. "/eval.jsonl"
    H.write(dir .. "/leaky.lua", [[
      return suite "leaky" {
        dataset = {{id = "a", input = "x"}},
        run = function(case)
          local r = llm.call{model = "mock", messages = {{role = "user", content = "ask " .. os.getenv("E")}}}
          error("cannot mail " .. os.getenv("E") .. " with " .. os.getenv("K"))
        end,
        scorers = {exact "y"},
      }
    ]])
    local r = H.moonspan({"eval", "--capture-content", "--log-file", log, dir .. "/leaky.lua"},
                         {db = dir .. "/x.db", env = ENV})
    assert.are.equal(1, r.code, r.err)
    assert.is_truthy(r.out:find("cannot mail [REDACTED:email] with [REDACTED:api_key]", 1, true), r.out)
    local stored = H.scalar(dir .. "/x.db", "SELECT error FROM eval_results")
    assert.is_truthy(stored:find("cannot mail [REDACTED:email] with [REDACTED:api_key]", 1, true), stored)
    local input = attr(dir .. "/x.db", "chat mock", "gen_ai.input.messages")
    assert.are.equal("ask [REDACTED:email]", cjson.decode(input[1])[1].parts[1].content)
    local bytes = H.read(dir .. "/x.db") .. (H.read(dir .. "/x.db-wal") or "")
    assert.are.same({}, leaks(bytes .. r.out .. r.err .. (H.read(log) or "")))
    assert.is_truthy((H.read(log) or ""):find("moonspan.error", 1, true))
  end)
end)

describe("bad capture options", function()
  local function refused(run_args, env, pattern)
    local r = H.run_script("print('ran')", {run_args = run_args, env = env})
    assert.are.equal(2, r.code, r.err)
    assert.are.equal("", r.out)
    assert.are.equal(1, H.lines(r.err), r.err)
    assert.is_truthy(r.err:find(pattern, 1, true), r.err)
  end

  it("are refused with exit 2 and a line naming the fix", function()
    refused({"--redact", "(unclosed"}, nil, "--redact '(unclosed' is not a POSIX extended regular expression")
    refused({"--redact", "a*"}, nil, "matches the empty text")
    refused({"--log", "xml"}, nil, "--log 'xml' is not a log format; give --log json")
    refused({"--log", "json", "--log-file", "x.jsonl"}, nil, "choose one")
    refused({"--log-file", "/nonexistent-dir/x.jsonl"}, nil, "cannot open log file /nonexistent-dir/x.jsonl")
    refused({}, {MOONSPAN_CAPTURE_CONTENT = "yes"}, "MOONSPAN_CAPTURE_CONTENT='yes' is not 1 or 0")
  end)

  it("capture that is not a boolean is an invalid_request_error of the call", function()
    local r = H.run_script([[
      local ok, e = pcall(llm.call, {model = "mock", capture = "yes", messages = {{role = "user", content = "x"}}})
      print(e.type, e.message)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("invalid_request_error\tllm.call: capture must be true or false", 1, true), r.out)
  end)

  it("--log json writes the records to stderr", function()
    local r = H.run_script("span('a', function() end)", {run_args = {"--log", "json"}})
    assert.are.equal(0, r.code, r.err)
    local names = {}
    for line in r.err:gmatch("[^\n]+") do names[#names + 1] = cjson.decode(line).attributes["moonspan.span.name"] end
    table.sort(names)
    assert.are.same({"a", "script"}, names)
  end)
end)
