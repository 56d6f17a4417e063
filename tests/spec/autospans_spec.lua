-- `moonspan run --auto-spans`: every Lua function call of the script as a
-- span, nested in the user's spans and they in it, whatever unwinds the
-- stack (errors caught by pcall, errors crossing spans, tail calls,
-- coroutines), and errors propagating exactly as without it.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")

-- Runs src (as script.lua) with `moonspan run --quiet FLAGS script.lua`.
local function run(src, flags, opts)
  opts = opts or {}
  local dir = H.tmpdir("auto")
  local script = H.write(dir .. "/script.lua", src)
  local args = {"run", "--quiet"}
  for _, f in ipairs(flags or {"--auto-spans"}) do args[#args + 1] = f end
  args[#args + 1] = script
  local r = H.moonspan(args, {db = dir .. "/x.db"})
  r.db = dir .. "/x.db"
  if opts.ok ~= false and r.code ~= 0 then error("exit " .. tostring(r.code) .. ": " .. r.err, 2) end
  return r
end

-- name -> list of spans with that name (in begin order); and by id.
local function spans(db, trace)
  local rows = H.spans(db, trace or "script")
  local by_name, by_id = {}, {}
  for _, s in ipairs(rows) do
    by_name[s.name] = by_name[s.name] or {}
    table.insert(by_name[s.name], s)
    by_id[s.id] = s
  end
  return rows, by_name, by_id
end

local function parent_name(by_id, s)
  return s.parent and by_id[s.parent] and by_id[s.parent].name
end

-- a (line 3) calls b (line 2) calls c (line 1), which raises a table.
local ABC = [[
local function c() error({type = "boom", message = "three calls deep"}) end
local function b() c() end
local function a() b() end
local function after() return 1 end
]]

describe("--auto-spans", function()
  it("records each call as a span under the caller's, with auto = true and where it is defined", function()
    local r = run([[
      local function c() return 1 end
      local function b() return c() + 0 end
      local function a() return b() + 0 end
      span("user", function() a() end)
    ]])
    local rows, by, by_id = spans(r.db)
    assert.are.equal("user", parent_name(by_id, by.a[1]))
    assert.are.equal("a", parent_name(by_id, by.b[1]))
    assert.are.equal("b", parent_name(by_id, by.c[1]))
    local attrs = H.json(by.c[1].attrs)
    assert.is_true(attrs.auto)
    assert.is_truthy(attrs.source:match("script%.lua:1$"), attrs.source)
    assert.is_truthy(H.json(by.a[1].attrs).source:match("script%.lua:3$"))
    -- not recorded: the main chunk, span()'s body, C functions, moonspan's own library
    assert.are.equal(5, #rows, "spans: root, user, a, b, c")
    for _, s in ipairs(rows) do
      local src = s.attrs and H.json(s.attrs).source
      assert.is_falsy(src and src:find("^scripts/"), src)
    end
  end)

  it("nests a user span inside an auto span and auto spans inside it", function()
    local r = run([[
      local function inner() return 1 end
      local function outer() return span("middle", function() return inner() end) end
      outer()
    ]])
    local _, by, by_id = spans(r.db)
    assert.are.equal("script", parent_name(by_id, by.outer[1]))
    assert.are.equal("outer", parent_name(by_id, by.middle[1]))
    assert.are.equal("middle", parent_name(by_id, by.inner[1]))
  end)

  it("an error three calls deep caught by pcall: the frames it unwound end as errors, "
     .. "the next call is their sibling, the error arrives unchanged", function()
    local r = run(ABC .. [[
      span("user", function()
        local ok, err = pcall(a)
        assert(ok == false and type(err) == "table" and err.type == "boom", tostring(err))
        after()
      end)
    ]])
    local _, by, by_id = spans(r.db)
    for _, name in ipairs({"b", "c"}) do
      assert.are.equal("error", by[name][1].status, name)
      assert.are.equal(0, by[name][1].error_own, name)
    end
    -- a, called by pcall, has no name at its call site: found as the upvalue holding it
    local a = by.a
    assert.is_table(a, "no span for a")
    assert.are.equal("error", a[1].status)
    assert.are.equal("user", parent_name(by_id, a[1]))
    assert.are.equal("b", parent_name(by_id, by.c[1]))
    assert.are.equal("user", parent_name(by_id, by.after[1]))
    assert.are.equal("ok", by.after[1].status)
    assert.are.equal("ok", by.user[1].status)
    -- as without --auto-spans: an error no span saw is no error of the request
    assert.are.equal(0, H.trace_row(r.db, "script").error_count)
  end)

  it("an error crossing a span is counted once, where it was raised; the script sees the same error", function()
    local src = ABC .. [[
      local ok, err = pcall(span, "inner", function() a() end)
      print(ok, err.type, err.message)
    ]]
    local plain = run(src, {})
    local auto = run(src)
    assert.are.equal(plain.out, auto.out)
    assert.are.equal("false\tboom\tthree calls deep\n", auto.out)
    assert.are.equal(1, H.trace_row(plain.db, "script").error_count)
    assert.are.equal(1, H.trace_row(auto.db, "script").error_count)
    local _, by = spans(auto.db)
    assert.are.equal(1, by.c[1].error_own)
    assert.are.equal("boom", by.c[1].error_type)
    assert.is_truthy(by.c[1].error_traceback and by.c[1].error_traceback:find("script.lua:1", 1, true))
    assert.are.equal(0, by.b[1].error_own)
    assert.are.equal("boom", by.b[1].error_type)
    assert.are.equal(0, by.inner[1].error_own)
    assert.are.equal("error", by.inner[1].status)
  end)

  it("an error that ends the script: same exit, message and traceback, counted once", function()
    local src = ABC .. "a()\n"
    local plain = run(src, {}, {ok = false})
    local auto = run(src, nil, {ok = false})
    assert.are.equal(1, auto.code)
    local function here(text, db) return (text:gsub(db:gsub("x%.db$", ""):gsub("%p", "%%%0"), "")) end
    assert.is_truthy(auto.err:find("script.lua:1: in upvalue 'c'", 1, true), auto.err)
    assert.are.equal(here(plain.err, plain.db), here(auto.err, auto.db))
    assert.are.equal(1, H.trace_row(auto.db, "script").error_count)
    local _, by = spans(auto.db)
    assert.are.equal(1, by.c[1].error_own)
    assert.are.equal("error", by.a[1].status)
  end)

  it("a tail call ends the caller's span and opens the callee's beside it", function()
    local r = run([[
      function t3() return 3 end
      function t2() return t3() end
      local function t1() return t2() end
      span("user", function() t1() end)
    ]])
    local _, by, by_id = spans(r.db)
    for _, name in ipairs({"t1", "t2", "t3"}) do
      assert.are.equal("user", parent_name(by_id, by[name][1]), name)
      assert.are.equal("ok", by[name][1].status, name)
    end
    assert.is_truthy(by.t1[1].start_ns <= by.t2[1].start_ns and by.t2[1].start_ns <= by.t3[1].start_ns)
  end)

  it("follows each coroutine's own calls across yields, nested under the span that made it", function()
    local r = run([[
      local function step(n) return n end
      local function worker(tag)
        step(1)
        coroutine.yield()
        step(2)
      end
      span("user", function()
        local x = coroutine.create(worker)
        local y = coroutine.create(worker)
        coroutine.resume(x, "x"); coroutine.resume(y, "y")
        step(0)
        coroutine.resume(x); coroutine.resume(y)
      end)
    ]])
    local _, by, by_id = spans(r.db)
    -- a coroutine's body is called by resume and no frame of its own thread holds it
    for name, list in pairs(by) do
      if name:find("^function <.*script%.lua:2>$") then by.worker = list end
    end
    assert.are.equal(2, #by.worker)
    for _, w in ipairs(by.worker) do assert.are.equal("user", parent_name(by_id, w)) end
    -- step: 2 in each worker, and step(0) in user's body
    local in_worker = {}
    for _, s in ipairs(by.step) do
      local p = by_id[s.parent]
      if p.name:find("^function <") then in_worker[p.id] = (in_worker[p.id] or 0) + 1
      else assert.are.equal("user", p.name) end
    end
    for _, w in ipairs(by.worker) do assert.are.equal(2, in_worker[w.id]) end
    for _, s in ipairs(by.step) do assert.are.equal("ok", s.status) end
  end)

  it("closes the spans of a coroutine that an error ended", function()
    local r = run(ABC .. [[
      span("user", function()
        local co = coroutine.create(function() a() end)
        local ok, err = coroutine.resume(co)
        assert(not ok and err.type == "boom")
        after()
      end)
    ]])
    local _, by, by_id = spans(r.db)
    for _, name in ipairs({"b", "c"}) do
      assert.are.equal("error", by[name][1].status, name)
    end
    assert.are.equal("user", parent_name(by_id, by.after[1]))
    assert.is_truthy(by.c[1].start_ns + by.c[1].duration_ns <= by.after[1].start_ns)
  end)

  it("records up to DEPTH nested calls", function()
    local r = run([[
      local function rec(n) if n > 0 then return rec(n - 1) + 1 end return 0 end
      span("user", function() rec(20) end)
    ]], {"--auto-spans=5"})
    local _, by, by_id = spans(r.db)
    assert.are.equal(5, #by.rec)
    for i = 2, 5 do assert.are.equal(by.rec[i - 1].id, by.rec[i].parent) end
    assert.are.equal("user", parent_name(by_id, by.rec[1]))
  end)

  it("records trace-level spans: --level below trace, or moonspan.set_level, turns them off", function()
    local src = [[
      local function f() return 1 end
      span("user", function() f() end)
      moonspan.set_level("debug")
      local function g() return 2 end
      span("later", function() g() end)
    ]]
    local _, by = spans(run(src).db)
    assert.is_table(by.f)                  -- --auto-spans asks for the trace level
    assert.is_nil(by.g)                    -- set_level("debug") stopped them
    _, by = spans(run(src, {"--auto-spans", "--level", "debug"}).db)
    assert.is_nil(by.f)                    -- an explicit --level wins
    assert.is_table(by.user)
  end)

  it("lets trace() run inside a recorded function", function()
    local r = run([[
      local function work() return 1 end
      local function handle() return trace("request", function() return work() end) end
      handle()
    ]])
    local _, by = spans(r.db, "request")
    assert.is_table(by.work)
    local _, run_by = spans(r.db, "script")
    assert.is_table(run_by.handle)
  end)

  it("SIGINT in a busy recorded function: exits 130 and its spans are interrupted", function()
    local r = H.run_bg([[
      local function spin() local x = 0 while true do x = x + 1 end end
      local function go() ready() spin() end
      span("user", function() go() end)
    ]], "sleep 0.2; kill -INT $pid", {cmd = {"run", "--quiet", "--auto-spans"}, name = "busy"})
    assert.are.equal(130, r.status, r.err)
    local _, by = spans(r.db, "busy")
    assert.are.equal("interrupted", by.spin[1].status)
    assert.are.equal("interrupted", by.go[1].status)
    assert.are.equal(0, H.trace_row(r.db, "busy").error_count)
  end)
end)
