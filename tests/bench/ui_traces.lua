-- A store for the UI's trace list at scale: N one-span traces of three
-- names, 100 users and two tags, so /api/traces can be timed unfiltered,
-- sorted and filtered (run.sh, section 9).
local n = tonumber(arg[1]) or 1000000
local names = {"answer", "summarize", "classify"}
for i = 1, n do
  trace(names[i % 3 + 1], {user = "u" .. (i % 100), tags = {i % 2 == 0 and "even" or "odd"}}, function() end)
end
