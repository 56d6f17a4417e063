-- seed.lua — the pipelines the browser tests look at (tests/ui/harness.mjs,
-- seedStore): requests of distinct names, users, sessions, tags and
-- statuses, llm calls on the offline mock provider (tokens and costs), a
-- parallel fan-out, and a failing request. Deterministic apart from times.
local users = {"alice", "bob"}

for i = 1, 6 do
  trace("answer", {user = users[i % 2 + 1], session = "s" .. (i % 3), tags = {i % 2 == 0 and "even" or "odd", "seed"},
                   topic = i <= 3 and "billing" or "shipping"}, function()
    span("retrieve", function() moonspan.sleep_ms(2 + i) end)
    llm.call{model = "mock", messages = {{role = "user", content = "question " .. i .. string.rep(" word", i * 5)}},
             max_tokens = 50, mock = {latency_ms = 3}}
  end)
end

trace("summarize", {user = "carol", tags = {"batch"}}, function()
  parallel(
    function() span("part_a", function() moonspan.sleep_ms(20) end) end,
    function() span("part_b", function() moonspan.sleep_ms(20) end) end,
    function() llm.call{model = "mock", messages = {{role = "user", content = "summarize this"}}, mock = {latency_ms = 20}} end)
end)

pcall(trace, "broken", {user = "bob", session = "s9"}, function()
  span("fetch", function() error("upstream failed: 503") end)
end)
