-- `moonspan run --profile`: CPU-time samples of the Lua stack, stored as
-- each span's self time per function, and read back by `show --profile`
-- and `report --profile`. Through the real binary on a real store; no
-- timing is asserted, only where the samples went (the hot function
-- takes some hundred times the CPU of the cheap one).
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")

-- hot() is defined on line 1 and cheap() on line 6 of every script that
-- starts with this text.
local FUNCS = [[
local function hot(n)
  local x = 0
  for i = 1, n do x = x + i % 7 end
  return x
end
local function cheap(n)
  local x = 0
  for i = 1, n do x = x + i end
  return x
end
]]

local function trace_id(db, name)
  return H.scalar(db, "SELECT trace_id FROM traces WHERE name = '" .. name .. "'")
end

-- The node named `name` in a `show --json` tree.
local function find_span(node, name)
  if node.name == name then return node end
  for _, c in ipairs(node.children or {}) do
    local f = find_span(c, name)
    if f then return f end
  end
end

local function show_json(db, name)
  local r = H.moonspan({"show", "--profile", "--json", trace_id(db, name)}, {db = db})
  assert.are.equal(0, r.code, r.err)
  return H.json(r.out)
end

describe("run --profile", function()
  -- run --profile on a script in a fresh folder (named script.lua)
  local function profiled(src, opts)
    opts = opts or {}
    local dir = H.tmpdir("prof")
    local script = H.write(dir .. "/script.lua", src)
    local db = opts.db or dir .. "/x.db"
    local args = {"run"}
    if opts.quiet ~= false then args[#args + 1] = "--quiet" end
    for _, a in ipairs(opts.flags or {"--profile"}) do args[#args + 1] = a end
    args[#args + 1] = script
    local r = H.moonspan(args, {db = db})
    r.db, r.dir = db, dir
    return r
  end

  local hot = H.once(function()
    local r = profiled(FUNCS .. [[
      span("work", function()
        for i = 1, 40 do hot(200000); cheap(100) end
      end)
    ]])
    assert(r.code == 0, r.err)
    return r
  end)

  it("names hot() with its file:line as the top function of the span it ran in", function()
    local r = hot()
    local work = find_span(show_json(r.db, "script").spans[1], "work")
    assert.is_table(work.profile, "no profile on the span")
    local top = work.profile.functions[1]
    assert.are.equal("hot", top["function"])
    assert.is_truthy(top.source:find("script.lua$"), top.source)
    assert.are.equal(1, top.line)
    assert.is_truthy(top.share > 0.5, "hot's share: " .. top.share)
    assert.is_truthy(top.samples >= 10, "samples: " .. top.samples)
    -- cheap() is there or not, but never above hot()
    for i = 2, #work.profile.functions do
      assert.is_truthy(work.profile.functions[i].self_ms <= top.self_ms)
    end
    -- the text view: the span's line, then its functions with file:line
    local text = H.moonspan({"show", "--profile", trace_id(r.db, "script")}, {db = r.db})
    assert.are.equal(0, text.code, text.err)
    local after = text.out:match("\n  work [^\n]*\n(.*)$")
    assert.is_truthy(after, text.out)
    assert.is_truthy(after:match("^    profile: [^\n]* of CPU in its own code %(%d+ samples?%)\n"), text.out)
    assert.is_truthy(after:match("^[^\n]*\n +[%d.]+%% +[%d.]+ m?s  hot +[^\n]*script%.lua:1\n"), text.out)
  end)

  it("stores self time as samples x the period, and the span's samples add up", function()
    local r = hot()
    local rows = H.query(r.db, "SELECT p.samples, p.self_ns FROM span_profiles p")
    assert.is_truthy(#rows >= 1)
    for _, row in ipairs(rows) do assert.are.equal(row.samples * 1000000, row.self_ns) end
    local work = find_span(show_json(r.db, "script").spans[1], "work")
    local sum = 0
    for _, f in ipairs(work.profile.functions) do sum = sum + f.samples end
    assert.are.equal(work.profile.samples, sum)
  end)

  it("leaves show without --profile as it was", function()
    local r = hot()
    local plain = H.moonspan({"show", "--json", trace_id(r.db, "script")}, {db = r.db})
    assert.are.equal(0, plain.code, plain.err)
    assert.is_falsy(plain.out:find('"profile"', 1, true))
  end)

  it("names a C function by its name, with source [C]", function()
    local r = profiled([[
      span("sorting", function()
        local t = {}
        for i = 1, 200000 do t[i] = (i * 7919) % 200003 end
        for r = 1, 8 do table.sort(table.move(t, 1, #t, 1, {})) end
      end)
    ]])
    assert.are.equal(0, r.code, r.err)
    local sorting = find_span(show_json(r.db, "script").spans[1], "sorting")
    local top = sorting.profile.functions[1]
    assert.are.equal("sort", top["function"])
    assert.are.equal("[C]", top.source)
    assert.are.equal(-1, top.line)
  end)

  it("takes each coroutine's own innermost span", function()
    local r = profiled(FUNCS .. [[
      span("outer", function()
        local co = coroutine.wrap(function()
          span("in_coroutine", function() hot(3000000) end)
        end)
        co()
        cheap(10)
      end)
    ]])
    assert.are.equal(0, r.code, r.err)
    local tree = show_json(r.db, "script").spans[1]
    local inner = find_span(tree, "in_coroutine")
    assert.are.equal("hot", inner.profile.functions[1]["function"])
    local outer = find_span(tree, "outer")
    for _, f in ipairs(outer.profile and outer.profile.functions or {}) do
      assert.are_not.equal("hot", f["function"])
    end
  end)

  it("writes the samples of a long trace with the part that holds their span", function()
    -- 30,000 spans and 200 ms of age cut the run trace into parts as it goes
    local r = profiled(FUNCS .. [[
      for i = 1, 30000 do span("step", function() hot(300) end) end
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(H.scalar(r.db, "SELECT parts FROM traces") > 0, "the trace was not cut")
    -- every row names a span of its trace
    assert.are.equal(0, H.scalar(r.db, "SELECT count(*) FROM span_profiles p WHERE NOT EXISTS"
      .. " (SELECT 1 FROM spans s WHERE s.trace_row = p.trace_row AND s.span_index = p.span_index)"))
    assert.is_truthy(H.scalar(r.db, "SELECT count(DISTINCT span_index) FROM span_profiles") > 1)
    local rep = H.moonspan({"report", "--profile", "--json"}, {db = r.db})
    assert.are.equal(0, rep.code, rep.err)
    local steps = H.json(rep.out).steps
    local step
    for _, s in ipairs(steps) do if s.name == "step" then step = s end end
    assert.are.equal(H.scalar(r.db, "SELECT sum(samples) FROM span_profiles WHERE span_index > 0"), step.samples)
  end)

  it("keeps the profile of a run that SIGINT ends, which still ends cleanly", function()
    local r = H.run_bg(FUNCS .. [[
      span("spin", function()
        ready()
        while true do hot(100000) end
      end)
    ]], "sleep 0.3; kill -INT $pid", {cmd = {"run", "--quiet", "--profile"}, name = "spun"})
    assert.are.equal(130, r.status, r.err)
    assert.is_truthy(r.err:find("interrupted by SIGINT", 1, true), r.err)
    local _, by = H.spans(r.db, "spun")
    assert.are.equal("interrupted", by.spin.status)
    local work = find_span(show_json(r.db, "spun").spans[1], "spin")
    assert.are.equal("hot", work.profile.functions[1]["function"])
  end)

  it("cannot be swallowed by a pcall loop with --profile and --auto-spans on", function()
    local r = H.run_bg(FUNCS .. [[
      local n = 0
      while true do
        pcall(span, "s", function() hot(1000) end)
        n = n + 1
        if n == 200 then ready() end
      end
    ]], "sleep 0.3; kill -TERM $pid", {cmd = {"run", "--quiet", "--profile", "--auto-spans=3"}})
    assert.are.equal(143, r.status, r.err)
    assert.is_truthy(r.seconds < 10, "took " .. r.seconds .. " s")
  end)

  it("prints its line at the end: samples, and the overhead it calibrated", function()
    local r = profiled(FUNCS .. [[span("work", function() hot(2000000) end)]], {quiet = false})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.err:match("profiler: [%d,]+ samples at 1000 Hz over [%d.]+ s of CPU %([%d,]+ signals%), "
                                 .. "overhead ~[%d.]+%% %(calibrated: [%d.]+ us per signal%)"), r.err)
    local quiet = profiled(FUNCS .. [[span("work", function() hot(100) end)]])
    assert.is_falsy(quiet.err:find("profiler:", 1, true), quiet.err)
  end)

  it("counts samples outside any trace and says they are not stored", function()
    local r = profiled(FUNCS .. [[
      hot(3000000)
      span("later", function() end)
    ]], {quiet = false, flags = {"--profile=2000"}})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.err:find("at 2000 Hz", 1, true), r.err)
    assert.is_truthy(r.err:match("; [%d,]+ outside any trace, not stored"), r.err)
  end)

  it("writes function names from the script escaped in text, as they are in JSON", function()
    local r = profiled([==[
      _G["evil\27]0;pwned\7"] = function() local x = 0 for i = 1, 3000000 do x = x + i end end
      span("hostile", function() _G["evil\27]0;pwned\7"]() end)
    ]==])
    assert.are.equal(0, r.code, r.err)
    local id = trace_id(r.db, "script")
    for _, args in ipairs({{"show", "--profile", id}, {"report", "--profile"}}) do
      local t = H.moonspan(args, {db = r.db})
      assert.are.equal(0, t.code, t.err)
      assert.is_falsy(t.out:find("\27", 1, true), args[1] .. " wrote a raw ESC")
      assert.is_truthy(t.out:find("evil\\x1b]0;pwned\\x07", 1, true), t.out)
    end
    local hostile = find_span(show_json(r.db, "script").spans[1], "hostile")
    assert.are.equal("evil\27]0;pwned\7", hostile.profile.functions[1]["function"])
  end)

  it("profiles eval cases too", function()
    local dir = H.tmpdir("evalprof")
    local suite = H.write(dir .. "/busy.lua", FUNCS .. [[
      return suite "busy" {
        dataset = {{id = "one", input = "x"}},
        run = function(case) return span("compute", function() return tostring(hot(3000000)) end) end,
        scorers = {function() return 1 end},
      }
    ]])
    local r = H.moonspan({"eval", "--profile", suite}, {db = dir .. "/x.db"})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.err:find("profiler:", 1, true), r.err)
    local compute = find_span(show_json(dir .. "/x.db", "eval:busy:one").spans[1], "compute")
    assert.are.equal("hot", compute.profile.functions[1]["function"])
  end)
end)

describe("report --profile", function()
  local store = H.once(function()
    local dir = H.tmpdir("rprof")
    local script = H.write(dir .. "/script.lua", FUNCS .. [[
      for i = 1, 2 do
        trace("answer", function()
          span("work", function() hot(1500000); cheap(100) end)
          hot(1500000) -- the request's own code
        end)
      end
    ]])
    local r = H.moonspan({"run", "--quiet", "--profile", script}, {db = dir .. "/x.db"})
    assert(r.code == 0, r.err)
    return dir .. "/x.db"
  end)

  local function report(args)
    local all = {"report", "--profile"}
    for _, a in ipairs(args or {}) do all[#all + 1] = a end
    local r = H.moonspan(all, {db = store()})
    assert.are.equal(0, r.code, r.err)
    return r
  end

  it("sums the samples of every span of a step across traces, hottest function first", function()
    local j = H.json(report({"--json"}).out)
    assert.are.equal(2, j.traces)
    local work, request
    for _, s in ipairs(j.steps) do
      if s.name == "work" then work = s end
      if s.name == "answer" then request = s end
    end
    assert.are.equal(2, work.spans)
    assert.is_false(work.request)
    assert.are.equal("hot", work.functions[1]["function"])
    assert.are.equal(1, work.functions[1].line)
    local want = H.scalar(store(), "SELECT sum(p.samples) FROM span_profiles p JOIN spans s"
                                   .. " ON s.trace_row = p.trace_row AND s.span_index = p.span_index"
                                   .. " WHERE s.name = 'work'")
    assert.are.equal(want, work.samples)
    assert.is_true(request.request)
    assert.are.equal("hot", request.functions[1]["function"])
  end)

  it("writes text: each step, then its functions with file:line", function()
    local out = report().out
    assert.is_truthy(out:find("2 profiled traces, all time", 1, true), out)
    assert.is_truthy(out:match("\nwork  [^\n]+ in 2 spans %(%d+ samples%)\n +[%d.]+%% +[%d.]+ m?s  hot +[^\n]*script%.lua:1\n"), out)
    assert.is_truthy(out:find("\nanswer (the request's own code)", 1, true), out)
  end)

  it("keeps to --since and --name", function()
    assert.are.equal(2, H.json(report({"--json", "--since", "1h"}).out).traces)
    local none = report({"--name", "other*"})
    assert.is_truthy(none.out:find("no profiles recorded in this window", 1, true), none.out)
    assert.are.equal(0, #H.json(report({"--json", "--name", "other*"}).out).steps)
  end)

  it("says when nothing was profiled", function()
    local r = H.run_ok([[span("s", function() end)]])
    local rep = H.moonspan({"report", "--profile"}, {db = r.db})
    assert.are.equal(0, rep.code, rep.err)
    assert.is_truthy(rep.out:find("record some with `moonspan run --profile SCRIPT`", 1, true), rep.out)
    local id = H.scalar(r.db, "SELECT trace_id FROM traces")
    local show = H.moonspan({"show", "--profile", id}, {db = r.db})
    assert.are.equal(0, show.code, show.err)
    assert.is_truthy(show.out:find("profile: none stored for this trace", 1, true), show.out)
  end)
end)

describe("bad values", function()
  local script = H.write(H.tmpdir("bad") .. "/s.lua", "")
  local cases = {
    {{"run", "--profile=0", script}, "--profile=0 is not a sampling rate", "from 1 to 10000"},
    {{"run", "--profile=abc", script}, "--profile=abc is not a sampling rate", "--profile alone samples at 1000"},
    {{"run", "--profile=", script}, "--profile= is not a sampling rate", "from 1 to 10000"},
    {{"run", "--profile=10001", script}, "is not a sampling rate", "from 1 to 10000"},
    {{"eval", "--profile=0", script}, "--profile=0 is not a sampling rate", "from 1 to 10000"},
    {{"run", "--auto-spans=-1", script}, "--auto-spans=-1 is not a depth", "from 1 to 1000"},
    {{"run", "--auto-spans=0", script}, "--auto-spans=0 is not a depth", "--auto-spans alone records 10"},
    {{"run", "--auto-spans=x", script}, "--auto-spans=x is not a depth", "nested calls"},
    {{"run", "--profile", "500", script}, "cannot read script 500", "--profile=500"},
  }
  for _, c in ipairs(cases) do
    it("refuses `" .. table.concat(c[1], " "):gsub(script, "s.lua") .. "`, naming the fix", function()
      local r = H.moonspan(c[1], {db = H.tmpdir("bad") .. "/x.db"})
      assert.are.equal(2, r.code, r.err)
      assert.is_truthy(r.err:find(c[2], 1, true), r.err)
      assert.is_truthy(r.err:find(c[3], 1, true), r.err)
    end)
  end

  it("--help names the options", function()
    local run = H.moonspan({"run", "--help"})
    assert.is_truthy(run.out:find("--profile[=HZ]", 1, true), run.out)
    assert.is_truthy(run.out:find("--auto-spans[=DEPTH]", 1, true), run.out)
    for _, verb in ipairs({"show", "report", "eval"}) do
      local r = H.moonspan({verb, "--help"})
      assert.is_truthy(r.out:find("--profile", 1, true), verb .. ": " .. r.out)
    end
  end)
end)
