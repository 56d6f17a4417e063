-- The process around the script: os.exit, concurrent writers,
-- `moonspan test` itself, and an installed binary run from elsewhere.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")
local q = H.q

describe("os.exit", function()
  local exited = H.once(function()
    return H.run_script([[
      trace("before_exit", function() span("inside", function() end) end)
      trace("also_before", function() end)
      span("open_at_exit", function() os.exit(3) end)
      print("not reached")
    ]], {name = "exiting"})
  end)

  it("keeps its exit status and stores the traces that ended before it", function()
    local r = exited()
    assert.are.equal(3, r.code, r.err)
    assert.are.equal("", r.out)
    local _, by = H.spans(r.db, "before_exit")
    assert.are.equal("ok", by.before_exit and by.before_exit.status)
    assert.are.equal(by.before_exit.id, by.inside and by.inside.parent)
    assert.are.equal(1, H.scalar(r.db, "SELECT count(*) FROM traces WHERE name = 'also_before'"))
  end)

  it("honours --quiet", function()
    assert.are.equal("", exited().err)
  end)
end)

describe("concurrent processes on one database", function()
  local SRC = [[
    for i = 1, 200 do
      trace("t" .. i, function() span("a", function() span("b", function() end) end) end)
    end
  ]]

  local function run_four(dir, db, src)
    local script = H.write(dir .. "/many.lua", src or SRC)
    local cmd = {}
    for i = 1, 4 do
      cmd[#cmd + 1] = string.format("(%s --db %s run --quiet %s; echo \"exit$?\" > %s) &",
                                    q(H.bin), q(db), q(script), q(dir .. "/rc" .. i))
    end
    cmd[#cmd + 1] = "wait"
    local r = H.sh(table.concat(cmd, " "))
    local codes = {}
    for i = 1, 4 do codes[i] = (H.read(dir .. "/rc" .. i) or ""):match("exit(%d+)") end
    return r, codes
  end

  it("all succeed on an existing store and every trace is kept", function()
    local dir = H.tmpdir("conc")
    local db = H.run_ok("span('seed', function() end)", {dir = dir}).db
    local r, codes = run_four(dir, db)
    assert.are.same({"0", "0", "0", "0"}, codes, r.err)
    assert.are.equal(801, H.scalar(db, "SELECT count(*) FROM traces"))
    -- the seed run: its run trace and one span; each new trace: root, a, b
    assert.are.equal(2 + 800 * 3, H.scalar(db, "SELECT count(*) FROM spans"))
    assert.are.equal(801, H.scalar(db, "SELECT count(DISTINCT trace_id) FROM traces"))
  end)

  it("all succeed when they create the store together", function()
    -- a race, so several rounds, each on a new file
    for round = 1, 5 do
      local dir = H.tmpdir("conc_fresh")
      local db = dir .. "/fresh.db"
      local r, codes = run_four(dir, db, SRC:gsub("200", "50"))
      assert.are.same({"0", "0", "0", "0"}, codes, "round " .. round .. ": " .. r.err)
      assert.are.equal(200, H.scalar(db, "SELECT count(*) FROM traces"))
      assert.are.equal(4, H.scalar(db, "SELECT count(*) FROM runs"))
    end
  end)

  it("keeps each trace's spans with their trace", function()
    local dir = H.tmpdir("conc_shape")
    local db = H.run_ok("span('seed', function() end)", {dir = dir}).db
    run_four(dir, db)
    -- every trace holds as many spans as it says
    local bad = H.scalar(db, [[
      SELECT count(*) FROM traces t WHERE span_count !=
        (SELECT count(*) FROM spans s WHERE s.trace_row = t.id)]])
    assert.are.equal(0, bad)
  end)
end)

describe("moonspan test", function()
  local function spec_dir(files)
    local dir = H.tmpdir("specs")
    assert(os.execute("mkdir -p " .. q(dir .. "/spec")))
    for name, src in pairs(files) do H.write(dir .. "/spec/" .. name, src) end
    return dir
  end

  it("exits 0 when the specs pass, with span/trace/llm available and spans stored", function()
    local dir = spec_dir({["good_spec.lua"] = [[
      describe("inside the host", function()
        it("has the API", function()
          assert.are.equal(3, span("spec_span", function() return 3 end))
          assert.are.equal("hi", llm.call{model = "mock", messages = {{role = "user", content = "hi"}}}.text)
          assert.are.equal(32, #trace("spec_trace", function(ctx) return ctx.id end))
          assert.is_function(retry)
        end)
      end)
    ]]})
    local r = H.moonspan({"test", "-o", "TAP", dir .. "/spec"}, {db = dir .. "/t.db"})
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.is_truthy(r.out:find("ok 1", 1, true), r.out)
    assert.is_nil(r.out:find("not ok", 1, true), r.out)
    assert.are.equal(1, H.scalar(dir .. "/t.db", "SELECT count(*) FROM spans WHERE name = 'spec_span'"))
    assert.are.equal(1, H.scalar(dir .. "/t.db", "SELECT count(*) FROM traces WHERE name = 'spec_trace'"))
  end)

  it("exits 1 when a spec fails", function()
    local dir = spec_dir({["bad_spec.lua"] = [[
      describe("arithmetic", function()
        it("passes", function() assert.are.equal(2, 1 + 1) end)
        it("fails", function() assert.are.equal(3, 1 + 1) end)
      end)
    ]]})
    local r = H.moonspan({"test", "-o", "TAP", dir .. "/spec"}, {db = dir .. "/t.db"})
    assert.are.equal(1, r.code, r.out .. r.err)
    assert.is_truthy(r.out:find("not ok 2", 1, true), r.out)
  end)

  it("exits 1 when a spec file does not load", function()
    local dir = spec_dir({["broken_spec.lua"] = "describe('x', function( end)\n"})
    local r = H.moonspan({"test", "-o", "TAP", dir .. "/spec"}, {db = dir .. "/t.db"})
    assert.are.equal(1, r.code, r.out .. r.err)
  end)
end)

describe("an installed moonspan", function()
  local installed = H.once(function()
    local dest = H.tmpdir("install") .. "/root"
    local r = H.sh(string.format("make -s -C %s install PREFIX=/usr DESTDIR=%s", q(H.root), q(dest)))
    assert(r.code == 0, "make install failed:\n" .. r.out .. r.err)
    return dest .. "/usr/bin/moonspan"
  end)

  it("runs a pipeline from another folder: the Lua library is compiled in", function()
    local bin = installed()
    assert.is_true(H.exists(bin))
    local dir = H.tmpdir("elsewhere")
    H.write(dir .. "/pipeline.lua", [[
      llm.defaults.backoff_ms = 1
      trace("installed_run", function()
        local n = 0
        span("flaky", function()
          retry{attempts = 3, backoff_ms = 1, function() n = n + 1 if n < 2 then error("again") end end}
        end)
        local resp = llm.call{model = "mock", messages = {{role = "user", content = "from elsewhere"}},
                              mock = {fail = {status = 429, times = 1}}}
        assert(resp.text == "from elsewhere")
      end)
    ]])
    local r = H.moonspan({"run", "--quiet", "pipeline.lua"}, {bin = bin, cwd = dir, db = "x.db",
                                                             env = {LUA_PATH = false, LUA_INIT = false}})
    assert.are.equal(0, r.code, r.err)
    local rows = H.query(dir .. "/x.db", "SELECT name, cost_usd, retries FROM spans WHERE kind = 'llm'")
    assert.are.equal(1, #rows)
    assert.is_number(rows[1].cost_usd) -- the built-in price table is there too
    assert.are.equal(1, rows[1].retries)
    local rep = H.moonspan({"report", "--json"}, {bin = bin, cwd = dir, db = "x.db"})
    assert.are.equal(0, rep.code, rep.err)
    assert.are.equal(1, H.json(rep.out).requests.count)
  end)

  it("runs examples/research_agent.lua from another folder, and report --json sees it", function()
    local example = H.root .. "/examples/research_agent.lua"
    assert.is_true(H.exists(example), "examples/research_agent.lua is missing")
    local bin = installed()
    local dir = H.tmpdir("example")
    local r = H.moonspan({"run", "--quiet", example}, {bin = bin, cwd = dir, db = "x.db"})
    assert.are.equal(0, r.code, r.err)
    local rep = H.moonspan({"report", "--json"}, {bin = bin, cwd = dir, db = "x.db"})
    assert.are.equal(0, rep.code, rep.err)
    local j = H.json(rep.out)
    assert.is_truthy(j.requests.count >= 1)
    local names = {}
    for _, s in ipairs(j.steps) do names[#names + 1] = s.name end
    local all = table.concat(names, " ")
    for _, step in ipairs({"plan", "search", "rerank", "generate"}) do
      assert.is_truthy(all:find(step, 1, true), step .. " not among the steps: " .. all)
    end
    assert.is_truthy(j.retries.retried_calls >= 1, "the example's flaky step was not retried")
  end)
end)
