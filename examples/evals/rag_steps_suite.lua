-- An eval suite that judges how the answer was made, not only the answer:
-- a small retrieve -> generate pipeline on the offline `mock` model, with
-- assertions over each case's spans and gates over the whole suite. Run it
-- with
--
--   moonspan eval examples/evals/rag_steps_suite.lua
--
-- One case fails on purpose: the search index is flaky for "Lima", so its
-- retrieve step retries twice, and max_retries(1) fails naming the span
-- ("retrieve retried 2 times > 1"). The gates hold, the pass rate (75%)
-- reaches the 0.7 threshold, and the suite passes with exit 0; tighten a
-- gate (p95_ms("generate", 1)) to see one fail the suite.

local DOCS = {
  Paris = "Paris is the capital of France.",
  Tokyo = "Tokyo is the capital of Japan.",
  Lima = "Lima is the capital of Peru.",
  Oslo = "Oslo is the capital of Norway.",
}

-- A search backend that times out the first `flaky` times it is asked.
local failures = {}
local function search(city, flaky)
  failures[city] = (failures[city] or 0) + 1
  if failures[city] <= flaky then error("search timed out", 0) end
  return {DOCS[city]}
end

local function answer(case)
  local docs = span("retrieve", function(s)
    local found = retry{attempts = 3, backoff_ms = 5, function() return search(case.expected, case.flaky or 0) end}
    s:set("hits", #found)
    return found
  end)
  return span("generate", function()
    return llm.call{model = "mock", messages = {{role = "user", content = docs[1] .. "\n" .. case.input}},
                    mock = {reply = case.expected, latency_ms = 20}}.text
  end)
end

return suite "rag-steps" {
  dataset = {
    {id = "france", input = "What is the capital of France?", expected = "Paris"},
    {id = "japan", input = "What is the capital of Japan?", expected = "Tokyo"},
    {id = "peru", input = "What is the capital of Peru?", expected = "Lima", flaky = 2},
    {id = "norway", input = "What is the capital of Norway?", expected = "Oslo"},
  },
  run = answer,
  scorers = {
    contains(case_field "expected"),
    span_p95("generate", 500),          -- the p95 of this case's generate spans, in ms
    max_retries(1),                     -- no span retried more than once
    no_error_spans(),
    max_step_tokens("generate", 200),   -- input + output tokens of each generate call
    -- your own, over the case's spans: the answer was grounded in a search hit
    {name = "grounded", score = function(output, case, ctx)
      for _, s in ipairs(spans(ctx)) do
        if s.name == "retrieve" and (s.attrs.hits or 0) > 0 then return true, s.attrs.hits .. " hit(s)" end
      end
      return false, "no search hit behind the answer"
    end},
  },
  threshold = 0.7,
  gates = { p95_ms("generate", 500), pass_rate(0.7), mean_score("grounded", 0.9), max_cost_usd_total(0.01) },
}
