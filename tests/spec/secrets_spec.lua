-- Credentials a call sends (the API key, a gateway's key header, the
-- user:password of a base URL) reach the server and nothing else: not the
-- store, not stdout or stderr, not a recording, not a view of the store.
-- tests/fake_llm's "echo" fault plays a careless gateway that repeats
-- every request header (and the decoded Basic credentials) in its error.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local fake = dofile(here .. "fake_server.lua").start(H)
local S = require "moonspan.wire"

teardown(function() fake.stop() end)

-- a distinct random secret a tag long: never found by chance
local function secret(tag)
  return string.format("%s%08x%08x", tag, math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
end

local KEY, GATEWAY, PASSWORD, TOKEN = secret("Key"), secret("Gw"), secret("Pw"), secret("Tok")
local SECRETS = {api_key = KEY, gateway_header = GATEWAY, url_password = PASSWORD, bearer_header = TOKEN}
local BASE = fake.url:gsub("^http://", "http://alice:" .. PASSWORD .. "@")

local ENV = fake.env{OPENAI_API_KEY = KEY, OPENAI_BASE_URL = BASE, ANTHROPIC_BASE_URL = BASE, OLLAMA_HOST = BASE,
                    GATEWAY_KEY = GATEWAY, OLLAMA_TOKEN = TOKEN}

-- The calls: successful, streamed, failing with the echo (caught, retried,
-- inside llm.map, streamed, uncaught at the end), for three providers.
local SCRIPT = [[
local gw, token = os.getenv("GATEWAY_KEY"), os.getenv("OLLAMA_TOKEN")
local function req(extra)
  local r = {model = "gpt-4o-2024-08-06", messages = {{role = "user", content = "hi"}}, backoff_ms = 1,
             headers = {["x-gateway-key"] = gw}}
  for k, v in pairs(extra or {}) do
    if k == "fault" then r.headers["x-fake-fault"] = v else r[k] = v end
  end
  return r
end
trace("plain", function() print(llm.call(req()).text) end)
trace("streamed", function() print(llm.call(req{stream = true}).text) end)
trace("echoed", function(ctx)
  local ok, e = pcall(llm.call, req{fault = "echo"})
  assert(not ok and e.type == "authentication_error", tostring(e))
  print(tostring(e))
  io.stderr:write(e.message, "\n")
  ctx:add_error(e)
  ctx:set("last_error", e.message)
  moonspan.current_span():event("saw", {message = e.message})
end)
pcall(trace, "retried", function()
  span("step", function()
    retry{attempts = 2, backoff_ms = 1, function() return llm.call(req{fault = "echo"}) end}
  end)
end)
trace("mapped", function()
  local _, errs = llm.map({req{fault = "echo"}, req{fault = "echo", stream = true}, req()})
  for i, e in pairs(errs) do print(i, tostring(e)) end
end)
pcall(trace, "others", function()
  pcall(llm.call, {model = "claude-sonnet-4-20250514", api_key = os.getenv("OPENAI_API_KEY"),
                   messages = {{role = "user", content = "hi"}}, headers = {["x-fake-fault"] = "echo"}})
  pcall(llm.call, {model = "llama3.2:latest", messages = {{role = "user", content = "hi"}},
                   headers = {authorization = "Bearer " .. token, ["x-fake-fault"] = "echo"}})
  print(llm.call{model = "llama3.2:latest", messages = {{role = "user", content = "hi"}}, stream = true,
                 headers = {authorization = "Bearer " .. token}}.text)
end)
llm.call(req{fault = "echo"}) -- uncaught: message and traceback on stderr
]]

local SUITE = [[
local function req(fault)
  return {model = "gpt-4o-2024-08-06", messages = {{role = "user", content = "hi"}},
          headers = {["x-gateway-key"] = os.getenv("GATEWAY_KEY"), ["x-fake-fault"] = fault}}
end
return suite "secrets" {
  dataset = {{id = "ok", input = "none"}, {id = "echo", input = "echo"}},
  run = function(case) return llm.call(req(case.input)).text end,
  scorers = {contains "Paris"},
}
]]

local function leaks(text) return H.leaks(SECRETS, text) end

local run = H.once(function()
  local r = H.run_script(SCRIPT, {env = ENV, quiet = false})
  local dir = r.dir
  H.write(dir .. "/secrets_suite.lua", SUITE)
  local ev = H.moonspan({"eval", "--record", dir .. "/secrets_suite.lua"}, {db = r.db, env = ENV})
  r.eval = ev
  local views = {}
  for _, args in ipairs({{"report"}, {"report", "--json"}, {"traces", "--errors"}, {"traces", "--json"}}) do
    local v = H.moonspan(args, {db = r.db})
    views[#views + 1] = v.out .. v.err
  end
  for _, row in ipairs(H.query(r.db, "SELECT trace_id FROM traces")) do
    local v = H.moonspan({"show", row.trace_id}, {db = r.db})
    views[#views + 1] = v.out .. v.err
    v = H.moonspan({"show", "--json", row.trace_id}, {db = r.db})
    views[#views + 1] = v.out .. v.err
  end
  r.views = table.concat(views, "\n")
  r.dump = H.sh("sqlite3 " .. H.q(r.db) .. " .dump").out
  return r
end)

describe("credentials a call sends", function()
  it("reach the server (so the checks below can fail)", function()
    local r = run()
    assert.are.equal(1, r.code, r.err) -- the last, uncaught call
    assert.is_truthy(r.out:find("Paris is the capital of France.", 1, true), r.out)
    assert.is_truthy(r.out:find("Hello from OpenAI streaming!", 1, true), r.out)
    assert.is_truthy(r.out:find("Hello from Ollama streaming!", 1, true), r.out)
    -- the echo carried them all: the client saw them and had to redact them
    local redacted = select(2, r.out:gsub("%[redacted%]", ""))
    assert.is_true(redacted >= 4, r.out)
    -- unredacted, the echo holds each of them: the URL's password as curl's Basic credentials
    local function echoed(headers)
      headers["x-fake-fault"] = "echo"
      local h = moonspan.http.start{url = BASE .. "/v1/messages", method = "POST", body = "{}", headers = headers}
      moonspan.http.wait(h)
      return leaks(h:result().body)
    end
    assert.are.same({"api_key", "gateway_header", "url_password"}, echoed{["x-gateway-key"] = GATEWAY, ["x-api-key"] = KEY})
    assert.are.same({"bearer_header"}, echoed{authorization = "Bearer " .. TOKEN})
    assert.are.equal(1, r.eval.code, r.eval.err) -- the echo case fails
    assert.are.equal(2, H.scalar(r.db, "SELECT count(*) FROM eval_results"))
    assert.is_true(H.scalar(r.db, "SELECT count(*) FROM llm_recordings") >= 1)
    assert.is_truthy(r.dump:find("x-gateway-key: [redacted]", 1, true), "the echo was not stored at all")
  end)

  it("are nowhere in the store", function()
    assert.are.same({}, leaks(run().dump))
    local bytes = H.read(run().db) .. (H.read(run().db .. "-wal") or "")
    assert.are.same({}, leaks(bytes))
  end)

  it("are nowhere in stdout or stderr, of run or eval", function()
    local r = run()
    assert.are.same({}, leaks(r.out))
    assert.are.same({}, leaks(r.err))
    assert.are.same({}, leaks(r.eval.out))
    assert.are.same({}, leaks(r.eval.err))
  end)

  it("are nowhere in report, traces or show", function()
    assert.are.same({}, leaks(run().views))
  end)

  it("leave the server's address on the span, without the userinfo", function()
    local rows = H.query(run().db, "SELECT DISTINCT json_extract(attrs, '$.\"server.address\"') AS a "
                                   .. "FROM spans WHERE kind = 'llm'")
    assert.are.same({{a = "127.0.0.1:" .. fake.port}}, rows)
  end)
end)

describe("the partial text of a broken stream", function()
  it("is kept without the call's credentials, on the error and on the span", function()
    -- a credential that the answer happens to contain: the first words the stream sends
    local r = H.run_ok([[
      trace("cut", function()
        local ok, e = pcall(llm.call, {model = "gpt-4o-2024-08-06", stream = true, retries = 0,
          messages = {{role = "user", content = "hi"}},
          headers = {["x-gateway-key"] = "Hello from", ["x-fake-fault"] = "truncate",
                     ["x-fake-truncate-after"] = "4"}})
        assert(not ok)
        print(e.partial_text)
      end)
    ]], {env = fake.env()})
    assert.are.equal("[redacted] OpenAI\n", r.out)
    local attrs = H.json(H.spans(r.db, "cut")[2].attrs)
    assert.are.equal("[redacted] OpenAI", attrs["llm.partial_text"])
  end)
end)

describe("a call refused for its base URL", function()
  it("names the URL without its userinfo", function()
    for _, base in ipairs({"alice:" .. PASSWORD .. "@127.0.0.1:1/v1", "ftp://alice:" .. PASSWORD .. "@127.0.0.1:1"}) do
      local ok, e = pcall(llm.call, {model = "gpt-4o", base_url = base, api_key = KEY, messages = {{role = "user", content = "x"}}})
      assert.is_false(ok)
      assert.are.equal("configuration_error", e.type)
      assert.is_truthy(e.message:find("127.0.0.1:1", 1, true), e.message)
      assert.are.same({}, leaks(tostring(e)))
    end
  end)
end)

describe("S.secrets", function()
  it("finds the key, credential headers, and URL userinfo in every form a server can echo", function()
    local list = S.secrets("k3y-0001", {authorization = "Bearer tok-0002", ["x-api-key"] = "ak-0003",
                                        ["helicone-auth"] = "Bearer hel-0004", Cookie = "sess=0005",
                                        ["x-request-id"] = "not-secret", ["content-type"] = "application/json"},
                           "https://bob:p%40ss-0006@gw.example/v1")
    local set = {}
    for _, s in ipairs(list) do set[s] = true end
    for _, want in ipairs({"k3y-0001", "Bearer tok-0002", "tok-0002", "ak-0003", "hel-0004", "sess=0005",
                           "bob:p%40ss-0006", "p%40ss-0006", "p@ss-0006", "bob:p@ss-0006",
                           "Ym9iOnBAc3MtMDAwNg=="}) do
      assert.is_true(set[want], want)
    end
    assert.is_nil(set["not-secret"])
    assert.is_nil(set["application/json"])
    for i = 2, #list do assert.is_true(#list[i - 1] >= #list[i]) end
  end)

  it("and S.redact removes them, and key-shaped words, keeping the text around them", function()
    local secrets = S.secrets("plainkey-0001", {["x-gateway-key"] = "gw-0002"}, "http://u:pw-0003@h")
    local text = S.redact("key plainkey-0001, gw gw-0002, basic dTpwdy0wMDAz, url u:pw-0003@h, "
                          .. "sk-abcdefghijklmnopqrstuv, Bearer abcdefghij, masked sk-abc***1234, Basic plan", secrets)
    assert.are.equal("key [redacted], gw [redacted], basic [redacted], url [redacted]@h, "
                     .. "sk-[redacted], Bearer [redacted], masked sk-abc***1234, Basic plan", text)
  end)
end)
