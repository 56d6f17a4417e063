-- An eval suite: ten questions about capital cities, answered by the
-- offline `mock` model, each case scored on its answer, its latency and
-- its cost. Run it with
--
--   moonspan eval examples/evals/qa_suite.lua
--
-- then open a failed case's trace with `moonspan show ID`. Two cases fail
-- on purpose, so the suite falls under its 0.9 threshold and exits 1: the
-- mock's little knowledge base has the classic Sydney mistake and knows
-- nothing about Mongolia. Point `model` at a real one (e.g. put
-- "model": "claude-haiku-4-5" on a case) to evaluate that instead.

-- What the mock "knows": it answers from this table, like a model would
-- from its weights.
local KNOWN = {
  France = "Paris", Japan = "Tokyo", Kenya = "Nairobi", Canada = "Ottawa", Brazil = "Brasília",
  Australia = "Sydney", -- wrong on purpose: the answer people (and models) often give
  Egypt = "Cairo", Peru = "Lima", Norway = "Oslo",
}

local function mock_answer(request)
  local question = request.messages[#request.messages].content
  local country = question:match("capital of ([%a ]+)%?")
  local city = country and KNOWN[country]
  if city then return "The capital of " .. country .. " is " .. city .. "." end
  return "I am not sure which city that is."
end

return suite "capital-cities" {
  dataset = "capitals.jsonl",          -- next to this file (or a path from the current folder)
  run = function(case)
    return llm.call{
      model = case.model or "mock",
      messages = {{role = "user", content = case.input}},
      mock = {reply = mock_answer, latency_ms = 20 + #case.input % 25},
    }.text
  end,
  scorers = { contains(case_field "expected"), max_latency_ms(2000), max_cost_usd(0.01) },
  threshold = 0.9,
}
