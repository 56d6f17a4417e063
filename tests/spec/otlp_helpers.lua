-- Shared by the OTLP specs: the loopback receiver (tests/otel/receiver.js,
-- which decodes protobuf with the official OTLP schema and JSON with
-- JSON.parse) and the store's spans to compare what it got with.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")
local q = H.q

local O = {}

-- Starts the receiver with its answers (see receiver.js: 200, 503:S,
-- hang, ...) on a free port or on `port`, with `extra` options (e.g.
-- "--phoenix"); it exits when this spec's pipe to it closes (rx.stop()).
function O.receiver(answers, port, extra)
  local dir = H.tmpdir("otlp")
  local port_file, log = dir .. "/port", dir .. "/log"
  local pipe = assert(io.popen("exec node " .. q(H.root .. "/tests/otel/receiver.js") .. " --port-file "
                               .. q(port_file) .. " --log " .. q(log) .. " --answers " .. q(answers or "200")
                               .. (port and (" --port " .. port) or "") .. " " .. (extra or "")
                               .. " >" .. q(dir .. "/out") .. " 2>&1", "w"))
  assert(H.wait_file(port_file, 15), "the OTLP test receiver did not start (is node on PATH? `make deps`):\n"
         .. (H.read(dir .. "/out") or ""))
  local rx = {port = tonumber(H.read(port_file)), log = log}
  rx.url = "http://127.0.0.1:" .. rx.port
  function rx.requests()
    local list = {}
    for line in (H.read(log) or ""):gmatch("[^\n]+") do list[#list + 1] = H.json(line) end
    return list
  end
  -- the requests to a path ending in `suffix` ("/v1/metrics")
  function rx.to(suffix)
    local list = {}
    for _, r in ipairs(rx.requests()) do
      if r.path:sub(-#suffix) == suffix then list[#list + 1] = r end
    end
    return list
  end
  -- every span of every request answered 200, by span id (each must come
  -- once), their count, and the resources they came with
  function rx.spans()
    local by_id, n, resources = {}, 0, {}
    for _, r in ipairs(rx.requests()) do
      for _, rs in ipairs(r.status == 200 and r.body or {}) do
        resources[#resources + 1] = rs.resource
        for _, ss in ipairs(rs.scopeSpans or {}) do
          for _, s in ipairs(ss.spans) do
            assert(not by_id[s.spanId], "span " .. s.spanId .. " sent twice")
            by_id[s.spanId] = s
            n = n + 1
          end
        end
      end
    end
    return by_id, n, resources
  end
  function rx.stop() pipe:close() end
  return rx
end

-- Fails unless the spans received (by id, n of them) are exactly the
-- spans stored for run `run_id` (every run when nil): the same trace ids,
-- parents, names and times.
function O.same_as_store(db, got, n, run_id)
  local rows = H.query(db, [[
    SELECT s.trace_id, printf('%016x', s.span_id) AS span_id,
           CASE WHEN s.parent_id IS NULL THEN '' ELSE printf('%016x', s.parent_id) END AS parent_id,
           s.name, CAST(s.start_ns AS TEXT) AS start_ns, CAST(s.start_ns + s.duration_ns AS TEXT) AS end_ns
    FROM spans s JOIN traces t ON t.id = s.trace_row]] .. (run_id and (" WHERE t.run_id = " .. run_id) or ""))
  -- plain assert: this file runs outside busted's environment
  assert(#rows > 0, "nothing stored")
  assert(#rows == n, string.format("%d spans stored, %d received", #rows, n))
  for _, row in ipairs(rows) do
    local s = got[row.span_id]
    local what = "span " .. row.name .. " " .. row.span_id
    assert(s, what .. " was not received")
    for _, f in ipairs({{"trace_id", "traceId"}, {"parent_id", "parentSpanId"}, {"name", "name"},
                        {"start_ns", "startTimeUnixNano"}, {"end_ns", "endTimeUnixNano"}}) do
      assert(row[f[1]] == s[f[2]], string.format("%s: %s stored %s, received %s %s", what, f[1],
                                                 tostring(row[f[1]]), f[2], tostring(s[f[2]])))
    end
  end
  return #rows
end

return O
