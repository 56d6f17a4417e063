-- Text from scripts, models and servers reaches the terminal escaped: a
-- span name that sets the terminal title and clears the screen is shown
-- as "\x1b]0;...", never acted on. Every command that prints such text is
-- run through the real binary on a store whose every name is hostile.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")
local EH = dofile(here .. "eval_helpers.lua")

-- OSC 0 (set the title, ended by BEL), then CSI 2J (clear the screen)
local X = [[\27]0;pwned\7\27[2J]]
local SHOWN = [[\x1b]0;pwned\x07\x1b[2J]]

-- No ESC and no BEL anywhere in what a command printed.
local function clean(r, what)
  for _, stream in ipairs({"out", "err"}) do
    local s = r[stream]
    local at = s:find("[\27\7]")
    assert.is_nil(at, string.format("%s: a raw control byte reached std%s at %s:\n%s", what, stream,
                                    tostring(at), s))
  end
end

local SCRIPT = [[
  local X = "]] .. X .. [["
  llm.defaults.backoff_ms = 1
  trace("req" .. X, {note = "attr" .. X}, function(ctx)
    ctx:set("key" .. X, "value" .. X)
    span("step" .. X, {k = "v" .. X}, function(s)
      s:set("attr" .. X, "val" .. X)
      s:event("ev" .. X, {x = "y" .. X})
    end)
    pcall(span, "fails" .. X, function() error({type = "type" .. X, message = "msg" .. X}) end)
    ctx:add_error("manual" .. X, "mtype" .. X)
    -- a model name and an error text as a server could send them
    pcall(llm.call, {provider = "mock", model = "mock" .. X, retries = 1,
                     messages = {{role = "user", content = "hi"}},
                     mock = {fail = {status = 500, times = 5, message = "server says" .. X}}})
  end)
]]

describe("hostile names and messages", function()
  local run = H.once(function()
    local r = H.run_script(SCRIPT, {name = "hostile", quiet = false})
    assert.are.equal(0, r.code, r.err)
    r.id = H.scalar(r.db, "SELECT trace_id FROM traces")
    return r
  end)

  it("are escaped in the run timeline of `moonspan run`", function()
    local r = run()
    clean(r, "run")
    assert.is_truthy(r.err:find("step" .. SHOWN, 1, true), r.err)
  end)

  it("are escaped by `moonspan show`, text and JSON", function()
    local r = H.moonspan({"show", run().id}, {db = run().db})
    assert.are.equal(0, r.code, r.err)
    clean(r, "show")
    for _, s in ipairs({"req", "step", "ev", "fails", "type", "msg", "mtype", "manual", "chat mock", "server says"}) do
      assert.is_truthy(r.out:find(s .. SHOWN, 1, true), s .. " not shown escaped:\n" .. r.out)
    end
    r = H.moonspan({"show", "--json", run().id}, {db = run().db})
    assert.are.equal(0, r.code, r.err)
    clean(r, "show --json")
    assert.are.equal("req\27]0;pwned\7\27[2J", H.json(r.out).name)
  end)

  it("are escaped by `moonspan traces`, text and JSON", function()
    for _, args in ipairs({{"traces"}, {"traces", "--errors"}, {"traces", "--json"}}) do
      local r = H.moonspan(args, {db = run().db})
      assert.are.equal(0, r.code, r.err)
      clean(r, table.concat(args, " "))
    end
    local r = H.moonspan({"traces"}, {db = run().db})
    assert.is_truthy(r.out:find("req" .. SHOWN, 1, true), r.out)
  end)

  it("are escaped by `moonspan report`, text and JSON", function()
    local r = H.moonspan({"report"}, {db = run().db})
    assert.are.equal(0, r.code, r.err)
    clean(r, "report")
    for _, s in ipairs({"step", "type", "msg", "mtype", "manual", "server says"}) do
      assert.is_truthy(r.out:find(s .. SHOWN, 1, true), s .. " not shown escaped:\n" .. r.out)
    end
    r = H.moonspan({"report", "--name", "req*"}, {db = run().db})
    clean(r, "report --name")
    r = H.moonspan({"report", "--json"}, {db = run().db})
    assert.are.equal(0, r.code, r.err)
    clean(r, "report --json")
  end)
end)

describe("hostile eval suites", function()
  local SUITE = [[
    local X = "]] .. X .. [["
    return suite("hostile" .. X) {
      dataset = {{id = "case" .. X, input = "a"}, {id = "boom" .. X, input = "b"}},
      run = function(case)
        if case.input == "b" then error("run failed" .. X) end
        return "out" .. X
      end,
      scorers = {function() return false, "reason" .. X end},
    }
  ]]

  local evaluated = H.once(function()
    local dir = H.tmpdir("hostile_eval")
    local r = H.moonspan({"eval", H.write(dir .. "/suite.lua", SUITE)}, {db = dir .. "/x.db"})
    r.db = dir .. "/x.db"
    return r
  end)

  it("are escaped in the failed cases, the summary and the progress of `moonspan eval`", function()
    local r = evaluated()
    assert.are.equal(1, r.code, r.err)
    clean(r, "eval")
    for _, s in ipairs({"hostile", "case", "boom", "reason", "run failed"}) do
      assert.is_truthy(r.out:find(s .. SHOWN, 1, true), s .. " not shown escaped:\n" .. r.out)
    end
    assert.is_truthy(r.err:find("case" .. SHOWN, 1, true), r.err)
  end)

  it("are escaped in the evals section of `moonspan report`", function()
    local r = H.moonspan({"report"}, {db = evaluated().db})
    assert.are.equal(0, r.code, r.err)
    clean(r, "report")
    assert.is_truthy(r.out:find("case" .. SHOWN, 1, true), r.out)
    assert.is_truthy(r.out:find("run failed" .. SHOWN, 1, true), r.out)
  end)

  it("are escaped on the progress line drawn on a terminal", function()
    local dir = H.tmpdir("hostile_tty")
    local r = EH.main{files = {H.write(dir .. "/suite.lua", SUITE)}, tty = true}
    -- the line's own "\r\27[K" is the only escape sequence
    local rest = r.err:gsub("\r\27%[K", "")
    assert.is_nil(rest:find("[\27\7]"), rest)
    assert.is_truthy(rest:find("hostile" .. SHOWN, 1, true), rest)
  end)
end)

describe("hostile error messages that end a run", function()
  it("reach the console escaped, with the traceback's lines kept", function()
    local r = H.run_script([[
      local X = "]] .. X .. [["
      trace("req", function() span("step", function() error("boom" .. X) end) end)
    ]], {name = "uncaught"})
    assert.are.equal(1, r.code)
    clean(r, "an uncaught error")
    assert.is_truthy(r.err:find("boom" .. SHOWN, 1, true), r.err)
    assert.is_truthy(r.err:find("\nstack traceback:\n", 1, true), r.err)
  end)

  it("keep the 8-bit CSI and bidi overrides out of --json too", function()
    local r = H.run_script([[span("csi\194\155" .. "2J rtl\226\128\174", function() end)]], {name = "c1"})
    assert.are.equal(0, r.code, r.err)
    local show = H.moonspan({"show", "--json", H.scalar(r.db, "SELECT trace_id FROM traces")}, {db = r.db})
    assert.are.equal(0, show.code, show.err)
    assert.is_nil(show.out:find("\194\155", 1, true), show.out)
    assert.is_nil(show.out:find("\226\128\174", 1, true), show.out)
    assert.is_truthy(show.out:find("csi\\u009b2J rtl\\u202e", 1, true), show.out)
  end)
end)
