-- The command line, end to end through the binary: run, traces, show,
-- --help, usage errors, and which databases are refused.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")

local function one_line(s)
  return s:match("^[^\n]+\n?$") ~= nil
end

describe("moonspan run", function()
  it("exits 0 and stores the implicit run trace named after the script", function()
    local r = H.run_ok([[
      span("load", function() span("parse", function() end) end)
      span("save", function() end)
    ]], {name = "my_pipeline"})
    local rows, by = H.spans(r.db, "my_pipeline")
    assert.are.equal(4, #rows)
    assert.is_truthy(by.my_pipeline, "no trace named my_pipeline")
    assert.are.equal("trace", by.my_pipeline.kind)
    assert.are.equal(by.my_pipeline.id, by.load.parent)
    assert.are.equal(by.my_pipeline.id, by.save.parent)
    assert.are.equal(by.load.id, by.parse.parent)
    assert.are.equal("ok", H.trace_row(r.db, "my_pipeline").status)
  end)

  it("records the run: script and arguments", function()
    local r = H.run_ok("span('x', function() end)", {name = "recorded", args = {"a", "b c"}})
    local runs = H.query(r.db, "SELECT script, args, host_version FROM runs")
    assert.are.equal(1, #runs)
    assert.are.equal(r.script, runs[1].script)
    assert.are.same({"a", "b c"}, H.json(runs[1].args))
    assert.is_truthy(#runs[1].host_version > 0)
  end)

  it("gives the script its arguments in arg and ...", function()
    local r = H.run_ok([[
      local cjson = require "cjson"
      print(cjson.encode({arg0 = arg[0], a1 = arg[1], a2 = arg[2], a3 = arg[3], n = #arg,
                          dots = {...}, ndots = select("#", ...)}))
    ]], {name = "args", args = {"one", "two words", ""}})
    local j = H.json(r.out)
    assert.are.equal(r.script, j.arg0)
    assert.are.equal("one", j.a1)
    assert.are.equal("two words", j.a2)
    assert.are.equal("", j.a3)
    assert.are.equal(3, j.n)
    assert.are.equal(3, j.ndots)
    assert.are.same({"one", "two words", ""}, j.dots)
  end)

  it("prints the trace timeline to stderr, and --quiet turns it off", function()
    local src = [[
      trace("timeline_trace", function()
        span("first_step", function() end)
        span("second_step", function() end)
      end)
      print("stdout stays clean")
    ]]
    local loud = H.run_script(src, {name = "loud", quiet = false})
    assert.are.equal(0, loud.code, loud.err)
    assert.are.equal("stdout stays clean\n", loud.out)
    for _, s in ipairs({"timeline_trace", "first_step", "second_step"}) do
      assert.is_truthy(loud.err:find(s, 1, true), s .. " not in stderr:\n" .. loud.err)
    end
    local quiet = H.run_script(src, {name = "quiet", quiet = true})
    assert.are.equal(0, quiet.code, quiet.err)
    assert.are.equal("stdout stays clean\n", quiet.out)
    assert.are.equal("", quiet.err)
  end)

  describe("when the script fails", function()
    local failed = H.once(function()
      return H.run_script([[
        span("step_one", function() end)
        span("bad_step", function() error("kaboom in the pipeline") end)
        span("never", function() end)
      ]], {name = "failing"})
    end)

    it("exits 1 with the error and a traceback on stderr", function()
      local r = failed()
      assert.are.equal(1, r.code)
      assert.is_truthy(r.err:find("kaboom in the pipeline", 1, true), r.err)
      assert.is_truthy(r.err:find("traceback", 1, true), r.err)
    end)

    it("stores its spans all the same", function()
      local _, by = H.spans(failed().db, "failing")
      assert.are.equal("ok", by.step_one and by.step_one.status)
      assert.are.equal("error", by.bad_step and by.bad_step.status)
      assert.are.equal(1, by.bad_step.error_own)
      assert.is_truthy(by.bad_step.error_message:find("kaboom in the pipeline", 1, true))
      assert.is_nil(by.never)
    end)

    it("marks the run trace, whose body the error left, as error", function()
      local t = H.trace_row(failed().db, "failing")
      assert.are.equal("error", t.status)
      assert.are.equal(1, t.error_count)
      local _, by = H.spans(failed().db, "failing")
      assert.are.equal("error", by.failing.status)
      assert.are.equal(0, by.failing.error_own)
    end)

    it("exits 1 on a syntax error", function()
      local r = H.run_script("span('x', function() end", {name = "syntax"})
      assert.are.equal(1, r.code)
      assert.is_truthy(r.err:find("syntax.lua", 1, true), r.err)
    end)
  end)

  it("exits 2 when the script cannot be read", function()
    local dir = H.tmpdir("noscript")
    local r = H.moonspan({"run", dir .. "/missing.lua"}, {db = dir .. "/x.db"})
    assert.are.equal(2, r.code)
    assert.is_truthy(r.err:find("missing.lua", 1, true), r.err)
    assert.is_true(one_line(r.err), r.err)
  end)
end)

describe("--help", function()
  local cases = {
    {{"--help"}, "usage: moonspan"},
    {{"run", "--help"}, "usage: moonspan run"},
    {{"report", "--help"}, "usage: moonspan report"},
    {{"traces", "--help"}, "usage: moonspan traces"},
    {{"show", "--help"}, "usage: moonspan show"},
    {{"test", "--help"}, "usage: moonspan test"},
  }
  for _, case in ipairs(cases) do
    it("works for `moonspan " .. table.concat(case[1], " ") .. "` without touching a store", function()
      local dir = H.tmpdir("help")
      local r = H.moonspan(case[1], {cwd = dir, env = {MOONSPAN_DB = false}})
      assert.are.equal(0, r.code, r.err)
      assert.are.equal("", r.err)
      assert.are.equal(case[2], r.out:sub(1, #case[2]), r.out)
      assert.is_truthy(H.lines(r.out) >= 3, r.out)
      assert.is_false(H.exists(dir .. "/moonspan.db"))
    end)
  end

  it("lists every command in the top-level help", function()
    local r = H.moonspan({"--help"})
    for _, c in ipairs({"run", "report", "traces", "show", "test", "--db"}) do
      assert.is_truthy(r.out:find(c, 1, true), c)
    end
  end)
end)

describe("bad command lines", function()
  -- each: arguments, a string the one-line message must contain
  local cases = {
    {{"frob"}, "run"},
    {{"--frob", "report"}, "--frob"},
    {{"report", "--bogus"}, "--bogus"},
    {{"report", "--since", "3x"}, "--since"},
    {{"report", "--since", "-5m"}, "--since"},
    {{"report", "--by", "week"}, "month"},
    {{"report", "--name"}, "--name"},
    {{"traces", "--limit", "0"}, "--limit"},
    {{"traces", "--limit", "ten"}, "--limit"},
    {{"traces", "extra"}, "extra"},
    {{"show"}, "TRACE_ID"},
    {{"show", "not-hex!"}, "not-hex!"},
    {{"show", "abcd", "--pick", "0"}, "--pick"},
    -- costs are priced when recorded: a reader has nothing to reprice
    {{"report", "--prices", "prices.tsv"}, "--prices applies when traces are recorded"},
    {{"--prices", "prices.tsv", "traces"}, "--prices"},
    {{"show", "abcd", "--prices=prices.tsv"}, "--prices"},
    -- every read-only view refuses it with the same fix (host/cli_view.c)
    {{"runs", "--prices", "prices.tsv"}, "so drop --prices here and pass it to the run that records"},
    {{"sql", "--prices", "prices.tsv", "SELECT 1"}, "so drop --prices here and pass it to the run that records"},
    {{"evals", "flaky", "s", "--prices", "prices.tsv"}, "so drop --prices here and pass it to the run that records"},
    {{"diff", "1", "1", "--prices", "prices.tsv"}, "so drop --prices here and pass it to the run that records"},
    {{"show", "abcd", "--pick", "first"}, "--pick"},
    {{"run"}, "SCRIPT"},
    {{"run", "--bogus", "x.lua"}, "--bogus"},
    {{"--db"}, "--db"},
  }
  for _, case in ipairs(cases) do
    it("exits 2 with a one-line message for `" .. table.concat(case[1], " ") .. "`", function()
      local dir = H.tmpdir("usage")
      -- a real store, so nothing but the command line can be wrong
      H.run_ok("span('x', function() end)", {dir = dir})
      local before = H.read(dir .. "/x.db")
      local argv = {}
      for _, a in ipairs(case[1]) do argv[#argv + 1] = a end
      local r = H.moonspan(argv, {cwd = dir, env = {MOONSPAN_DB = dir .. "/x.db"}})
      assert.are.equal(2, r.code, r.err)
      assert.are.equal("", r.out)
      assert.is_true(one_line(r.err), "not one line:\n" .. r.err)
      assert.is_truthy(r.err:find(case[2], 1, true), r.err)
      -- the line tells what to do: a usage hint or an example
      assert.is_truthy(r.err:find("--help", 1, true) or r.err:find("e.g.", 1, true)
                       or r.err:find("use ", 1, true) or r.err:find("commands are", 1, true)
                       or r.err:find("moonspan traces", 1, true), r.err)
      assert.are.equal(before, H.read(dir .. "/x.db"))
    end)
  end
end)

describe("--db", function()
  local function refused(setup, expect_msg)
    local dir = H.tmpdir("refuse")
    local db = dir .. "/store.db"
    setup(db)
    local before = H.read(db)
    local marker = dir .. "/script_ran"
    H.write(dir .. "/s.lua", "io.open(" .. string.format("%q", marker) .. ", 'w'):close() span('x', function() end)")
    for _, argv in ipairs({{"run", "--quiet", dir .. "/s.lua"}, {"report"}, {"traces"}}) do
      local r = H.moonspan(argv, {db = db})
      assert.are_not.equal(0, r.code, argv[1] .. " accepted " .. db)
      assert.is_true(one_line(r.err), r.err)
      assert.is_truthy(r.err:find(expect_msg, 1, true), argv[1] .. ": " .. r.err)
      assert.is_truthy(r.err:find(db, 1, true), "the message should name the file: " .. r.err)
      assert.are.equal(before, H.read(db), argv[1] .. " changed " .. db)
    end
    assert.is_false(H.exists(marker), "the script ran against a refused store")
  end

  it("refuses a file that is not a SQLite database and leaves it unchanged", function()
    refused(function(db) H.write(db, "hello, I am a text file\nnot a database\n") end, "not a SQLite database")
  end)

  it("refuses a SQLite database of another program and leaves it unchanged", function()
    refused(function(db)
      H.query(db, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1, 'ann');")
    end, "not a moonspan store")
  end)

  it("refuses a store from a newer schema and leaves it unchanged", function()
    refused(function(db)
      local r = H.run_ok("span('x', function() end)", {db = db, dir = db:match("^(.*)/")})
      H.query(r.db, "PRAGMA user_version = 99")
    end, "newer")
  end)

  it("refuses a store it cannot write", function()
    if H.is_root() then
      -- root ignores file modes; /proc refuses new files even to root
      local r = H.moonspan({"run", "--quiet", H.write(H.tmpdir("ro") .. "/s.lua", "span('x', function() end)")},
                           {db = "/proc/moonspan-test.db"})
      assert.are.equal(2, r.code, r.err)
      assert.is_truthy(r.err:find("/proc/moonspan-test.db", 1, true), r.err)
      assert.is_truthy(r.err:find("writable", 1, true), r.err)
      return
    end
    local dir = H.tmpdir("ro")
    local r = H.run_ok("span('x', function() end)", {dir = dir})
    assert(os.execute("chmod 444 " .. H.q(r.db)))
    local before = H.read(r.db)
    local r2 = H.run_script("span('y', function() end)", {dir = dir, name = "second"})
    assert.are_not.equal(0, r2.code)
    assert.is_truthy(r2.err:find(r.db, 1, true), r2.err)
    assert.are.equal(before, H.read(r.db))
  end)

  it("defaults to $MOONSPAN_DB, then ./moonspan.db; --db wins over both", function()
    local dir = H.tmpdir("envdb")
    local script = H.write(dir .. "/s.lua", "span('x', function() end)")
    local env_db = dir .. "/from_env.db"
    local r = H.moonspan({"run", "--quiet", script}, {cwd = dir, env = {MOONSPAN_DB = env_db}})
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(1, H.scalar(env_db, "SELECT count(*) FROM traces"))
    assert.is_false(H.exists(dir .. "/moonspan.db"))
    r = H.moonspan({"traces"}, {cwd = dir, env = {MOONSPAN_DB = env_db}})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x"), r.out)

    r = H.moonspan({"run", "--quiet", script}, {cwd = dir, env = {MOONSPAN_DB = false}})
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(1, H.scalar(dir .. "/moonspan.db", "SELECT count(*) FROM traces"))

    local flag_db = dir .. "/from_flag.db"
    r = H.moonspan({"run", "--quiet", script}, {cwd = dir, db = flag_db, env = {MOONSPAN_DB = env_db}})
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(1, H.scalar(flag_db, "SELECT count(*) FROM traces"))
    assert.are.equal(1, H.scalar(env_db, "SELECT count(*) FROM traces"))
  end)

  for _, verb in ipairs({{"report"}, {"traces"}, {"show", "abcd1234"}}) do
    it("`" .. verb[1] .. "` on a missing database exits 2 with a clear message and creates nothing", function()
      local dir = H.tmpdir("missing")
      local db = dir .. "/nothing_here.db"
      local r = H.moonspan(verb, {db = db})
      assert.are.equal(2, r.code, r.err)
      assert.is_true(one_line(r.err), r.err)
      assert.is_truthy(r.err:find(db, 1, true), r.err)
      assert.is_truthy(r.err:find("moonspan run", 1, true), r.err)
      assert.is_false(H.exists(db))
    end)
  end
end)

describe("moonspan traces and show", function()
  local store = H.once(function()
    return H.run_ok([[
      llm.defaults.backoff_ms = 1
      trace("first_trace", function() span("a", function() end) end)
      moonspan.sleep_ms(3)
      pcall(trace, "second_trace", function()
        span("parent_step", function()
          span("child_step", function() end)
          llm.call{model = "mock", messages = {{role = "user", content = "hi there"}},
                   mock = {fail = {status = 429, times = 2}}}
        end)
        span("failing_step", function() error({type = "planner_error", message = "no plan found"}) end)
      end)
      moonspan.sleep_ms(3)
      trace("third_trace", function() span("c", function() end) end)
    ]], {name = "listing"})
  end)

  local function id_of(name)
    return H.trace_row(store().db, name).trace_id
  end

  it("lists the newest trace first, one line each with id and status", function()
    local r = H.moonspan({"traces"}, {db = store().db})
    assert.are.equal(0, r.code, r.err)
    local p1 = r.out:find("first_trace", 1, true)
    local p2 = r.out:find("second_trace", 1, true)
    local p3 = r.out:find("third_trace", 1, true)
    assert.is_truthy(p1 and p2 and p3, r.out)
    assert.is_truthy(p3 < p2 and p2 < p1, "not newest first:\n" .. r.out)
    for _, name in ipairs({"first_trace", "second_trace", "third_trace"}) do
      local line = r.out:match("[^\n]*" .. name .. "[^\n]*")
      assert.is_truthy(line:find(id_of(name), 1, true), line)
    end
    assert.is_truthy(r.out:match("[^\n]*second_trace[^\n]*"):find("error", 1, true))
  end)

  it("honours --limit and --errors", function()
    local r = H.moonspan({"traces", "--limit", "2"}, {db = store().db})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("third_trace", 1, true))
    assert.is_truthy(r.out:find("second_trace", 1, true))
    assert.is_nil(r.out:find("first_trace", 1, true))
    r = H.moonspan({"traces", "--errors"}, {db = store().db})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("second_trace", 1, true))
    assert.is_nil(r.out:find("first_trace", 1, true))
    assert.is_nil(r.out:find("third_trace", 1, true))
  end)

  it("shows a trace from a prefix of its id as an indented tree", function()
    local id = id_of("second_trace")
    local r = H.moonspan({"show", id:sub(1, 8)}, {db = store().db})
    assert.are.equal(0, r.code, r.err)
    local out = r.out
    assert.is_truthy(out:find(id, 1, true), out)
    local function indent(name)
      local pre = out:match("\n( *)" .. name:gsub("%p", "%%%0"))
      assert.is_truthy(pre, name .. " not in:\n" .. out)
      return #pre
    end
    assert.is_truthy(indent("child_step") > indent("parent_step"), out)
    assert.is_truthy(indent("chat mock") > indent("parent_step"), out)
    assert.are.equal(indent("parent_step"), indent("failing_step"))
    local fail_line = out:match("[^\n]*failing_step[^\n]*")
    assert.is_truthy(fail_line:find("error", 1, true), fail_line)
    assert.is_truthy(fail_line:find("no plan found", 1, true), fail_line)
    local llm_line = out:match("[^\n]*chat mock[^\n]*")
    assert.is_truthy(llm_line:find("retries 2", 1, true) or llm_line:find("2 retries", 1, true), llm_line)
    assert.is_truthy(llm_line:find("$", 1, true), llm_line)
  end)

  it("shows a ctx:add_error as an error of the request, the root row agreeing with the header", function()
    local r = H.run_ok([[
      trace("judged", function(ctx)
        span("answer", function() end)
        ctx:add_error("the answer is wrong", "wrong_answer")
      end)
    ]], {name = "manual_error"})
    local id = H.trace_row(r.db, "judged").trace_id
    local show = H.moonspan({"show", id}, {db = r.db})
    assert.are.equal(0, show.code, show.err)
    assert.is_truthy(show.out:find("status error (1 error)", 1, true), show.out)
    assert.is_truthy(show.out:find("\njudged +[%d.]+ %S*s +error\n"), show.out) -- ms, µs or ns
    assert.is_truthy(show.out:find("  * ERROR (ctx:add_error) wrong_answer: the answer is wrong\n", 1, true),
                     show.out)
    local j = H.json(H.moonspan({"show", "--json", id}, {db = r.db}).out)
    local ev = j.spans[1].events[1]
    assert.are.equal("error", j.spans[1].status)
    assert.are.equal("error", ev.name)
    assert.are.equal("wrong_answer", ev.error_type)
    assert.are.equal("the answer is wrong", ev.error_message)
    local top = H.json(H.moonspan({"report", "--json"}, {db = r.db}).out).errors.top
    assert.are.same({type = "wrong_answer", message = "the answer is wrong", count = 1}, top[1])
  end)

  it("exits 1 with a message for an unknown id", function()
    local r = H.moonspan({"show", "0123456789abcdef"}, {db = store().db})
    assert.are.equal(1, r.code)
    assert.are.equal("", r.out)
    assert.is_true(one_line(r.err), r.err)
    assert.is_truthy(r.err:find("0123456789abcdef", 1, true), r.err)
  end)
end)

describe("moonspan show on traces that share an id (TRACEPARENT)", function()
  local OUTER = "4bf92f3577b34da6a3ce929d0e0e4736"
  local store = H.once(function()
    local r = H.run_ok([[
      for _, name in ipairs({"first_request", "second_request", "third_request"}) do
        trace(name, function() span("step_of_" .. name, function() moonspan.sleep_ms(2) end) end)
      end
    ]], {name = "joined", env = {TRACEPARENT = "00-" .. OUTER .. "-00f067aa0ba902b7-01"}})
    -- a second run joining another outer trace whose id starts the same way
    H.run_ok("trace('other_request', function() end)",
             {name = "other", db = r.db, env = {TRACEPARENT = "00-4bf92f35" .. string.rep("0", 24)
                                                                 .. "-00f067aa0ba902b7-01"}})
    return r
  end)

  it("stores every trace of the run under the outer id", function()
    assert.are.equal(3, H.scalar(store().db, "SELECT count(*) FROM traces WHERE trace_id = '" .. OUTER .. "'"))
  end)

  it("lists them numbered instead of showing one, and says how to pick", function()
    local r = H.moonspan({"show", OUTER}, {db = store().db})
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("", r.out)
    local pos = {}
    for k, name in ipairs({"first_request", "second_request", "third_request"}) do
      local line = r.err:match("\n  " .. k .. " +" .. OUTER .. "  " .. name .. "[^\n]*")
      assert.is_truthy(line, name .. " not listed as " .. k .. ":\n" .. r.err)
      local root = H.scalar(store().db, "SELECT printf('%016x', s.span_id) FROM traces t JOIN spans s"
                                         .. " ON s.trace_row = t.id AND s.span_index = 0"
                                         .. " WHERE t.name = '" .. name .. "'")
      assert.is_truthy(line:find(root, 1, true), "root span " .. root .. " not in: " .. line)
      pos[k] = r.err:find(name, 1, true)
    end
    assert.is_truthy(pos[1] < pos[2] and pos[2] < pos[3])
    local last = r.err:match("([^\n]+)\n$")
    assert.is_truthy(last:find("3 traces share the id " .. OUTER, 1, true), last)
    assert.is_truthy(last:find("moonspan show " .. OUTER .. " --pick N", 1, true), last)
  end)

  it("shows the one --pick N names", function()
    local r = H.moonspan({"show", OUTER, "--pick", "2"}, {db = store().db})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("^second_request  trace " .. OUTER .. "  %(%-%-pick 2 of 3 matching traces%)\n"),
                     r.out)
    assert.is_truthy(r.out:find("step_of_second_request", 1, true), r.out)
    assert.is_nil(r.out:find("first_request", 1, true), r.out)
    r = H.moonspan({"show", "--pick=3", "--json", OUTER}, {db = store().db})
    assert.are.equal(0, r.code, r.err)
    local j = H.json(r.out)
    assert.are.equal("third_request", j.name)
    assert.are.equal(3, j.pick)
    assert.are.equal(3, j.matching_traces)
  end)

  it("answers --json with the matches on stdout", function()
    local r = H.moonspan({"show", "--json", OUTER}, {db = store().db})
    assert.are.equal(1, r.code, r.err)
    local j = H.json(r.out)
    assert.are.equal(3, j.count)
    assert.are.equal(3, #j.matches)
    for k, name in ipairs({"first_request", "second_request", "third_request"}) do
      assert.are.equal(k, j.matches[k].pick)
      assert.are.equal(name, j.matches[k].name)
      assert.are.equal(OUTER, j.matches[k].trace_id)
      assert.are.equal("ok", j.matches[k].status)
      assert.matches("^%x+$", j.matches[k].root_span_id)
    end
    assert.is_truthy(j.error:find("--pick N", 1, true), j.error)
    assert.is_true(one_line(r.err), r.err)
  end)

  it("refuses a --pick beyond the matches, listing them", function()
    local r = H.moonspan({"show", OUTER, "--pick", "4"}, {db = store().db})
    assert.are.equal(1, r.code, r.err)
    assert.are.equal("", r.out)
    assert.is_truthy(r.err:find("--pick 4: only 3 traces match " .. OUTER, 1, true), r.err)
    assert.is_truthy(r.err:find("third_request", 1, true), r.err)
  end)

  it("lists the traces of every id a prefix matches", function()
    local r = H.moonspan({"show", "4bf92f35"}, {db = store().db})
    assert.are.equal(1, r.code, r.err)
    assert.is_truthy(r.err:find("4 traces of 2 different ids match the prefix 4bf92f35", 1, true), r.err)
    assert.is_truthy(r.err:find("other_request", 1, true), r.err)
    -- the other run started last: it is number 4
    r = H.moonspan({"show", "4bf92f35", "--pick", "4"}, {db = store().db})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("^other_request  trace 4bf92f35"), r.out)
  end)
end)
