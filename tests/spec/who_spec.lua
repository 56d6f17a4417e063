-- Sessions, users and tags (schema v6) end to end: a real `moonspan run`
-- whose traces are for several users, then the columns in the store,
-- `report --by user|session` checked against SQL over the same rows, the
-- --user/--session/--tag filters of traces, report and diff, `show`, the
-- errors, and a version 5 store read as it is and then upgraded.
--
-- The store (one run):
--   a1  alice  s1  beta,eu   5 ms  a short mock reply
--   a2  alice  s1  beta     20 ms  a long mock reply
--   a3  alice  s2  eu       40 ms  a reply, then raises: status error
--   b1  bob    s3  us       10 ms  a middling reply
--   b2  bob    s3  -         2 ms  no LLM call: cost unknown
--   n1  -      -   -         1 ms  a short reply
--   late carol s4  x,y      set later with ctx:set (user and tags)
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")

local SCRIPT = [[
local function ask(name, opts, sleep, reply, fail)
  pcall(trace, name, opts, function()
    moonspan.sleep_ms(sleep)
    if reply then
      llm.call{model = "mock", messages = {{role = "user", content = "q"}}, mock = {reply = reply}}
    end
    if fail then error("boom") end
  end)
end
ask("a1", {user = "alice", session = "s1", tags = {"beta", "eu"}}, 5, "short")
ask("a2", {user = "alice", session = "s1", tags = {"beta"}}, 20, string.rep("word ", 30))
ask("a3", {user = "alice", session = "s2", tags = {"eu"}}, 40, "x", true)
ask("b1", {user = "bob", session = "s3", tags = {"us"}}, 10, string.rep("word ", 10))
ask("b2", {user = "bob", session = "s3"}, 2, nil)
ask("n1", {}, 1, "short")
trace("late", {session = "s4"}, function(ctx)
  ctx:set("user", "carol")
  ctx:set("tags", {"x", "y"})
end)
]]

local store = H.once(function()
  local r = H.run_script(SCRIPT, {name = "who"})
  assert(r.code == 0, r.err)
  return {db = r.db, dir = r.dir}
end)

local function ms(args, db)
  return H.moonspan(args, {db = db or store().db})
end

local function ok_json(args, db)
  local r = ms(args, db)
  assert(r.code == 0, r.err)
  return H.json(r.out)
end

local function names(...)
  local out = {}
  for i, t in ipairs(ok_json({"traces", "--json", "--sort", "start", ...})) do out[i] = t.name end
  table.sort(out)
  return table.concat(out, ",")
end

local function usage_error(args, msg) H.usage_error(ms(args), msg) end

-- Per group, from SQL over the same rows: requests, errors, tokens, cost,
-- and the sorted latencies (ms) of the completed requests.
local function groups_from_sql(db, col)
  local rows = H.query(db, "SELECT " .. col .. " AS who, duration_ns, status, input_tokens,"
                           .. " output_tokens, cost_usd FROM traces ORDER BY duration_ns")
  local g = {}
  for _, r in ipairs(rows) do
    local k = r.who or "(none)"
    local e = g[k] or {requests = 0, errors = 0, input = 0, output = 0, priced = 0, cost = 0, lat = {}}
    g[k] = e
    e.requests = e.requests + 1
    if r.status == "error" then e.errors = e.errors + 1 end
    e.input = e.input + r.input_tokens
    e.output = e.output + r.output_tokens
    if r.cost_usd then e.priced, e.cost = e.priced + 1, e.cost + r.cost_usd end
    e.lat[#e.lat + 1] = r.duration_ns / 1e6
  end
  return g
end

local function check_groups(db, by, col)
  local rep = ok_json({"report", "--by", by, "--json"}, db)
  assert.are.equal(by, rep.by)
  local want = groups_from_sql(db, col)
  local seen = 0
  for i, got in ipairs(rep.groups) do
    local k = got[by] or "(none)"
    local w = want[k]
    assert.is_truthy(w, "unexpected group " .. k)
    seen = seen + 1
    assert.are.equal(w.requests, got.requests, k)
    assert.are.equal(w.errors, got.error_requests, k)
    assert.are.equal(w.input, got.input_tokens, k)
    assert.are.equal(w.output, got.output_tokens, k)
    assert.are.equal(w.priced, got.priced_requests, k)
    if w.priced > 0 then
      H.close_to(w.cost, got.cost_usd, k .. " cost")
      H.close_to(w.cost / w.priced, got.cost_per_request_usd, k .. " cost per request")
    else
      assert.is_nil(got.cost_usd, k)
    end
    H.close_to(H.pct(w.lat, 50), got.latency_ms.p50, k .. " p50", 1e-6)
    H.close_to(H.pct(w.lat, 95), got.latency_ms.p95, k .. " p95", 1e-6)
    -- costliest first, unknown cost last
    local nxt = rep.groups[i + 1]
    if nxt and nxt.cost_usd then
      assert.is_truthy(got.cost_usd and got.cost_usd >= nxt.cost_usd, "order at " .. k)
    end
  end
  local n = 0
  for _ in pairs(want) do n = n + 1 end
  assert.are.equal(n, seen)
  return rep
end

describe("trace() with session, user and tags", function()
  it("stores them as columns of the trace, and keeps them as root attributes", function()
    local rows = H.query(store().db, "SELECT name, user_id, session, tags FROM traces ORDER BY id")
    local got = {}
    for _, r in ipairs(rows) do
      got[#got + 1] = table.concat({r.name, r.user_id or "-", r.session or "-", r.tags or "-"}, "|")
    end
    assert.are.same({
      'a1|alice|s1|["beta","eu"]', 'a2|alice|s1|["beta"]', 'a3|alice|s2|["eu"]', 'b1|bob|s3|["us"]',
      "b2|bob|s3|-", "n1|-|-|-", 'late|carol|s4|["x","y"]',
    }, got)
    local attrs = H.json(H.scalar(store().db, "SELECT attrs FROM traces WHERE name = 'a1'"))
    assert.are.equal("alice", attrs.user)
    assert.are.equal("s1", attrs.session)
    assert.are.equal('["beta","eu"]', attrs.tags)
  end)

  it("refuses tags that are not a list of strings, naming the fix", function()
    for _, bad in ipairs({'{1}', '{"a", x = "b"}', '{"a", {}}'}) do
      local r = H.run_script('trace("t", {tags = ' .. bad .. '}, function() end)', {name = "badtags"})
      assert.are.equal(1, r.code, r.err)
      assert.is_truthy(r.err:find("tags must be a list of strings", 1, true), r.err)
      assert.are.equal(0, H.scalar(r.db, "SELECT count(*) FROM traces WHERE name = 't'"))
    end
    -- a span's attributes stay scalars: tags as a list is for traces
    local r = H.run_script('trace("t", function() span("s", {tags = {"a"}}, function() end) end)',
                           {name = "spantags"})
    assert.are.equal(1, r.code)
    assert.is_truthy(r.err:find("attribute 'tags' must be a string, number or boolean", 1, true), r.err)
  end)
end)

describe("who a trace was for, whichever way it was written", function()
  it("follows a trace written in parts while open: its final row has the last values", function()
    local r = H.run_script([[
trace("long", {user = "first", tags = {"a"}}, function(ctx)
  span("step", function() end)
  moonspan.sleep_ms(400) -- the ended step waits past 200 ms: a part is written
  ctx:set("user", "second")
  ctx:set("session", "s9")
end)
]], {name = "parts"})
    assert.are.equal(0, r.code, r.err)
    local row = H.query(r.db, "SELECT parts, user_id, session, tags FROM traces WHERE name = 'long'")[1]
    assert.is_true(row.parts >= 1, "the trace was not written in parts")
    assert.are.equal("second", row.user_id)
    assert.are.equal("s9", row.session)
    assert.are.equal('["a"]', row.tags)
  end)

  it("comes from the pipeline's trace() inside an eval case", function()
    local dir = H.tmpdir("who-eval")
    H.write(dir .. "/s.lua", [[
return suite "who" {
  dataset = {{id = "c1", input = "x", expected = "x"}},
  run = function(case)
    return trace("pipeline", {user = "evaluator", tags = {"eval"}}, function() return case.input end)
  end,
  scorers = {exact(case_field "expected")},
}]])
    local r = H.moonspan({"eval", dir .. "/s.lua"}, {db = dir .. "/x.db"})
    assert.are.equal(0, r.code, r.err)
    local row = H.query(dir .. "/x.db", "SELECT name, user_id, tags FROM traces")[1]
    assert.are.equal("evaluator", row.user_id)
    assert.are.equal('["eval"]', row.tags)
    local rep = ok_json({"report", "--by", "user", "--json", "--evals", "only"}, dir .. "/x.db")
    assert.are.equal("evaluator", rep.groups[1].user)
  end)

  it("is escaped where a terminal shows it", function()
    local r = H.run_script([[
trace("t", {user = "evil\27[31m\n", session = "s\7", tags = {"x\27]0;"}}, function() end)
]], {name = "hostile"})
    assert.are.equal(0, r.code, r.err)
    local id = H.scalar(r.db, "SELECT trace_id FROM traces")
    for _, args in ipairs({{"traces"}, {"report", "--by", "user"}, {"report", "--by", "session"}, {"show", id}}) do
      local out = ms(args, r.db)
      assert.are.equal(0, out.code, out.err)
      assert.is_falsy(out.out:find("\27", 1, true), table.concat(args, " ") .. ": " .. out.out)
      assert.is_falsy(out.out:find("\7", 1, true), table.concat(args, " "))
      assert.is_falsy(out.out:find("evil\n", 1, true), table.concat(args, " "))
    end
    local t = ok_json({"traces", "--json"}, r.db)[1]
    assert.are.equal("evil\27[31m\n", t.user)
  end)
end)

describe("report --by user and --by session", function()
  it("gives each user's requests, errors, p50/p95, tokens and cost as SQL computes them", function()
    local rep = check_groups(store().db, "user", "user_id")
    local alice
    for _, g in ipairs(rep.groups) do if g.user == "alice" then alice = g end end
    assert.are.equal(3, alice.requests)
    assert.are.equal(1, alice.error_requests)
    H.close_to(1 / 3, alice.error_rate, "alice's error rate")
  end)

  it("groups by session the same way", function()
    check_groups(store().db, "session", "session")
  end)

  it("prints one line per user, costliest first, the traces without a user as (none)", function()
    local r = ms({"report", "--by", "user"})
    assert.are.equal(0, r.code, r.err)
    local lines = {}
    for l in r.out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.is_truthy(lines[1]:find("^Requests by user, all time, evals excluded"), lines[1])
    assert.is_truthy(lines[2]:find("^user +requests +errors +error rate +p50 +p95 +tokens in/out +cost"),
                     lines[2])
    local order = {}
    for i = 3, #lines do order[#order + 1] = lines[i]:match("^(%S+)") end
    local rep = ok_json({"report", "--by", "user", "--json"})
    local want = {}
    for i, g in ipairs(rep.groups) do want[i] = g.user or "(none)" end
    assert.are.same(want, order)
    assert.is_truthy(r.out:find("\nalice +3 +1 +33%.3%% "), r.out)
  end)

  it("is narrowed by the shared selection", function()
    local rep = ok_json({"report", "--by", "user", "--json", "--tag", "eu"})
    assert.are.equal(1, #rep.groups)
    assert.are.equal("alice", rep.groups[1].user)
    assert.are.equal(2, rep.groups[1].requests)
    assert.are.same({"eu"}, rep.window.tags)
  end)
end)

describe("--user, --session and --tag", function()
  it("select the traces of a user, a session, or carrying every tag given", function()
    assert.are.equal("a1,a2,a3", names("--user", "alice"))
    assert.are.equal("b1,b2", names("--session", "s3"))
    assert.are.equal("a1,a3", names("--tag", "eu"))
    assert.are.equal("a1", names("--tag", "beta", "--tag", "eu"))
    assert.are.equal("late", names("--tag", "y"))
    assert.are.equal("a3", names("--user", "alice", "--session", "s2"))
    assert.are.equal("", names("--user", "nobody"))
  end)

  it("narrow the report, naming the filters in its window", function()
    local rep = ok_json({"report", "--json", "--user", "bob"})
    assert.are.equal(2, rep.requests.count)
    assert.are.equal("bob", rep.window.user)
    assert.is_truthy(rep.window.description:find("user 'bob'", 1, true), rep.window.description)
    local r = ms({"report", "--user", "nobody"})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("no traces match this selection", 1, true), r.out)
  end)

  it("narrow both sides of a diff", function()
    local r = ms({"diff", "a*", "*", "--user", "alice", "--json"})
    assert.are.equal(0, r.code, r.err)
    local d = H.json(r.out)
    -- B is every trace of the store (7), narrowed to alice's 3
    assert.are.equal(3, d.a.requests)
    assert.are.equal(3, d.b.requests)
    assert.is_truthy(d.b.selection:find("user 'alice'", 1, true), d.b.selection)
  end)

  it("group a diff's request rows with --by user or --by session: whose cost changed", function()
    -- two runs of the same traffic; in the second, alice's answers are 10
    -- times longer (costlier), bob's unchanged, the traces with no user too
    local src = [[
      local long = arg[1] == "long"
      local function ask(user, session, words)
        trace("answer", {user = user, session = session}, function()
          llm.call{model = "mock", messages = {{role = "user", content = "q"}},
                   mock = {reply = string.rep("word ", words)}}
        end)
      end
      for i = 1, 6 do
        ask("alice", "sa", long and 50 or 5)
        ask("bob", "sb", 5)
        ask(nil, nil, 5)
      end
    ]]
    local first = H.run_script(src, {name = "bydiff", args = {"short"}})
    assert.are.equal(0, first.code, first.err)
    local second = H.run_script(src, {db = first.db, args = {"long"}})
    assert.are.equal(0, second.code, second.err)
    local db = first.db
    local r = ms({"diff", "1", "2", "--by", "user", "--json"}, db)
    assert.are.equal(0, r.code, r.err)
    local d = H.json(r.out)
    assert.are.equal("user", d.rows_by)
    local rows = {}
    for i, row in ipairs(d.requests) do
      assert.is_nil(row.name)
      rows[i] = row.all and "(all)" or row.user or "(none)"
    end
    assert.are.equal("(all),alice,bob,(none)", table.concat(rows, ","))
    local alice, bob, none = d.requests[2], d.requests[3], d.requests[4]
    for _, c in ipairs({{alice, "alice"}, {bob, "bob"}}) do
      local want = H.scalar(db, "SELECT count(*) FROM traces WHERE run_id = 1 AND user_id = '" .. c[2] .. "'")
      assert.are.equal(want, c[1].count_a.requests)
    end
    assert.are.equal(6, none.count_b.requests)
    assert.are.equal("costlier", alice.cost)
    assert.is_true(alice.cost_usd_per_request.diff > 0)
    assert.are.equal("no evidence", bob.cost)
    assert.are.equal("no evidence", none.cost)
    -- the same through SQL: alice's mean cost per request, B - A
    local function mean_cost(run)
      return H.scalar(db, "SELECT avg(cost_usd) FROM traces WHERE run_id = " .. run .. " AND user_id = 'alice'")
    end
    H.close_to(mean_cost(2) - mean_cost(1), alice.cost_usd_per_request.diff, "alice's cost change", 1e-9)
    -- text, and --fail-if names the user
    local t = ms({"diff", "1", "2", "--by", "user", "--fail-if", "costlier"}, db)
    assert.are.equal(1, t.code, t.err)
    assert.is_truthy(t.out:find("\nRequests: user 'alice' %(6 completed in A, 6 in B%): time [^;]+; cost costlier"), t.out)
    assert.is_truthy(t.out:find("\nRequests: user (none) (6 completed in A, 6 in B)", 1, true), t.out)
    assert.is_truthy(t.out:find("\n  requests user 'alice': [^\n]*costlier"), t.out)
    assert.is_falsy(t.out:find("requests user 'bob'", 1, true), t.out)
    -- by session: the same groups under their session ids
    local s = H.json(ms({"diff", "1", "2", "--by", "session", "--json"}, db).out)
    assert.are.equal("session", s.rows_by)
    assert.are.equal("sa", s.requests[2].session)
    assert.are.equal("costlier", s.requests[2].cost)
    assert.are.equal("sb", s.requests[3].session)
    -- and without --by user, no per-user rows (one trace name: the one row)
    assert.are.equal(1, #H.json(ms({"diff", "1", "2", "--json"}, db).out).requests)
    usage_error({"diff", "1", "2", "--by", "people"}, "--by user or --by session")
  end)

  it("show in traces as columns and in --json", function()
    local r = ms({"traces", "--user", "alice", "--limit", "1"})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("^trace id +name +user +session +start"), r.out)
    assert.is_truthy(r.out:find("\n%x+  a3 +alice +s2 +"), r.out)
    local t = ok_json({"traces", "--json", "--name", "a1"})[1]
    assert.are.equal("alice", t.user)
    assert.are.equal("s1", t.session)
    assert.are.same({"beta", "eu"}, t.tags)
    local plain = ms({"traces", "--name", "n1"})
    assert.is_falsy(plain.out:find("user", 1, true), plain.out)
  end)

  it("refuse bad values with one line naming the fix (exit 2)", function()
    usage_error({"traces", "--user", ""}, "--user is empty")
    usage_error({"report", "--session", ""}, "--session is empty")
    usage_error({"traces", "--tag", ""}, "--tag is empty")
    local many = {"traces"}
    for i = 1, 9 do many[#many + 1] = "--tag"; many[#many + 1] = "t" .. i end
    usage_error(many, "more than 8 --tag filters")
    usage_error({"report", "--by", "user", "--profile"}, "--by user groups the requests")
    usage_error({"report", "--overhead", "--user", "bob"}, "--overhead reports runs")
    usage_error({"report", "--by", "people"}, "--by user or --by session")
  end)
end)

describe("moonspan show", function()
  it("shows who the trace was for, in text and in --json", function()
    local id = ok_json({"traces", "--json", "--name", "a1"})[1].trace_id
    local r = ms({"show", id})
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find('\n  user alice   session s1   tags ["beta","eu"]\n', 1, true), r.out)
    local s = ok_json({"show", id, "--json"})
    assert.are.equal("alice", s.user)
    assert.are.equal("s1", s.session)
    assert.are.same({"beta", "eu"}, s.tags)
    local n = ok_json({"show", ok_json({"traces", "--json", "--name", "n1"})[1].trace_id, "--json"})
    assert.is_nil(n.user)
    assert.is_nil(n.tags)
  end)
end)

-- What the spans table says of who each span's request was for, as
-- moonspan sql (`--json`) and the sqlite3 CLI with the extension read it.
local SPAN_WHO = "SELECT t.name AS trace, s.name, s.session, s.user, s.tags FROM spans s"
                 .. " JOIN traces t ON s.trace_row = t.id ORDER BY t.id, s.span_index"
local PER_USER = "SELECT user, count(*) AS spans, sum(cost_usd) AS cost FROM spans GROUP BY user ORDER BY user"
local PER_USER_JOIN = "SELECT t.user_id AS user, count(*) AS spans, sum(s.cost_usd) AS cost FROM traces t"
                      .. " JOIN spans s ON s.trace_row = t.id GROUP BY t.user_id ORDER BY t.user_id"

local function sql_json(db, sql)
  return ok_json({"sql", "--json", sql}, db)
end

describe("the spans table", function()
  it("has each span's trace's session, user and tags, so cost per user needs no join", function()
    local db = store().db
    local rows = sql_json(db, SPAN_WHO)
    local seen = {}
    for _, r in ipairs(rows) do seen[r.trace .. "/" .. r.name] = r end
    -- the root and the llm call inside it alike
    for _, k in ipairs({"a1/a1", "a1/chat mock"}) do
      assert.are.equal("alice", seen[k].user, k)
      assert.are.equal("s1", seen[k].session, k)
      assert.are.equal('["beta","eu"]', seen[k].tags, k)
    end
    assert.are.equal("bob", seen["b2/b2"].user)
    assert.is_nil(seen["b2/b2"].tags)
    assert.is_nil(seen["n1/chat mock"].user)
    assert.is_nil(seen["n1/chat mock"].session)
    assert.are.equal("carol", seen["late/late"].user)
    assert.are.equal('["x","y"]', seen["late/late"].tags)
    -- every span agrees with its trace's columns
    assert.are.equal(0, H.scalar(db, "SELECT count(*) FROM spans s JOIN traces t ON s.trace_row = t.id"
                                     .. " WHERE s.user IS NOT t.user_id OR s.session IS NOT t.session"
                                     .. " OR s.tags IS NOT t.tags"))
    local per_user = sql_json(db, PER_USER)
    assert.are.same(H.query(db, PER_USER_JOIN), per_user)
    assert.are.same(per_user, H.query(db, PER_USER)) -- the sqlite3 CLI, through the extension
    assert.are.equal(3, H.scalar(db, "SELECT count(DISTINCT s.trace_row) FROM spans s, json_each(s.tags) j"
                                     .. " WHERE j.value = 'eu' OR j.value = 'x'"))
  end)
end)

describe("a version 5 store", function()
  local v5 = H.once(function()
    local dir = H.tmpdir("who-v5")
    local db = dir .. "/v5.db"
    assert(H.sh("cp " .. H.q(store().db) .. " " .. H.q(db)).code == 0)
    H.query(db, "ALTER TABLE traces DROP COLUMN session; ALTER TABLE traces DROP COLUMN user_id;"
                .. " ALTER TABLE traces DROP COLUMN tags; PRAGMA user_version = 5;")
    return db
  end)

  it("is read as it is, who coming from the traces' attrs, and left at version 5", function()
    local db = v5()
    assert.are.equal(5, H.scalar(db, "PRAGMA user_version"))
    local a = ok_json({"report", "--by", "user", "--json"}, db)
    local b = ok_json({"report", "--by", "user", "--json"})
    assert.are.same(b.groups, a.groups)
    assert.are.equal("a1,a2,a3", (function()
      local out = {}
      for i, t in ipairs(ok_json({"traces", "--json", "--user", "alice"}, db)) do out[i] = t.name end
      table.sort(out)
      return table.concat(out, ",")
    end)())
    assert.are.same({"beta", "eu"}, ok_json({"traces", "--json", "--name", "a1"}, db)[1].tags)
    assert.are.equal(5, H.scalar(db, "PRAGMA user_version"))
    assert.are.equal(0, H.scalar(db, "SELECT count(*) FROM pragma_table_info('traces') WHERE name = 'user_id'"))
  end)

  it("gives the spans table's session, user and tags from the traces' attrs", function()
    local db = v5()
    assert.are.same(sql_json(store().db, SPAN_WHO), sql_json(db, SPAN_WHO))
    assert.are.same(sql_json(store().db, PER_USER), sql_json(db, PER_USER))
    assert.are.same(H.query(store().db, SPAN_WHO), H.query(db, SPAN_WHO))
    assert.are.equal(5, H.scalar(db, "PRAGMA user_version"))
  end)

  it("is upgraded to version 6 with the columns filled from attrs", function()
    local db = v5()
    local r = ms({"upgrade"}, db)
    assert.are.equal(0, r.code, r.err)
    assert.is_truthy(r.out:find("upgraded from version 5 to 6", 1, true), r.out)
    local q = "SELECT name, user_id, session, tags FROM traces ORDER BY id"
    assert.are.same(H.query(store().db, q), H.query(db, q))
  end)
end)
