-- A research agent: plan → search → rerank → generate, per question.
--
-- Runs fully offline on the `mock` provider. Each question is one trace
-- (one request); each step is a span, so `moonspan report` can say which
-- step is slow, not just that "the agent" is. The search backend is flaky
-- (it fails now and then) and is wrapped in retry(), so the report shows
-- retries and how often they saved the request.
--
--   moonspan run examples/research_agent.lua [QUESTIONS]
--   moonspan report

local n_questions = tonumber(arg[1]) or 14

local questions = {
  "How do I pick a chunk size for retrieval?",
  "What is the difference between p95 and p99 latency?",
  "Why do agents need retries with jitter?",
  "How should I trace tool calls?",
  "What makes a good eval dataset?",
  "When is a cache read cheaper than a fresh prompt?",
  "Summarize every document in the corpus in full detail.",
}

-- The last question stuffs the whole corpus into the prompt: the provider
-- rejects it (HTTP 400, not retryable), so that request fails.
local function too_long(query)
  return query:find("every document", 1, true) ~= nil
end

-- A corpus to search, and a deterministic "random" source so every run
-- shows the same shape (flakiness included).
local corpus = {}
for i = 1, 200 do corpus[i] = string.format("doc-%03d about topic %d", i, i % 17) end
local seed = 7
local function rand()
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
end

local function search(query, k)
  moonspan.sleep_ms(15 + rand() * 25)        -- index lookup
  if rand() < 0.3 then error("search backend timed out") end
  local hits = {}
  for i = 1, k do hits[i] = corpus[(#query * 7 + i * 13) % #corpus + 1] end
  return hits
end

local function rerank(docs)
  moonspan.sleep_ms(5 + rand() * 10)         -- a cross-encoder, in real life
  table.sort(docs)
  return {docs[1], docs[2], docs[3]}
end

local function answer(query)
  return trace("answer_question", {query = query}, function(ctx)
    local plan = span("plan", function()
      return llm.call{
        model = "mock", system = "Break the question into search queries.",
        messages = {{role = "user", content = query}},
        mock = {reply = "1. " .. query .. "\n2. background on " .. query, latency_ms = 40},
      }
    end)

    -- each attempt is its own span, so the report counts the timeouts
    -- even when a retry saves the request
    local docs = span("search", {k = 8}, function()
      return retry{attempts = 3, backoff_ms = 20, function(attempt)
        return span("search_backend", {attempt = attempt}, function() return search(query, 8) end)
      end}
    end)

    local top = span("rerank", function(s)
      s:set("candidates", #docs)
      return rerank(docs)
    end)

    local resp = span("generate", function()
      return llm.call{
        model = "mock", max_tokens = 400,
        system = "Answer from the documents.\n" .. table.concat(top, "\n"),
        messages = {{role = "user", content = plan.text}},
        mock = {latency_ms = 120 + math.floor(rand() * 80),
                reply = "Based on " .. top[1] .. ": " .. query:lower(),
                fail = too_long(query) and {status = 400,
                  message = "prompt is too long: 212000 tokens > 200000 maximum"} or nil},
      }
    end)
    ctx:set("answer_chars", #resp.text)
    return resp.text
  end)
end

local failed = 0
for i = 1, n_questions do
  local q = questions[(i - 1) % #questions + 1]
  local ok, err = pcall(answer, q)
  if not ok then
    failed = failed + 1
    io.stderr:write("question failed: ", tostring(err), "\n")
  end
end
print(string.format("answered %d of %d questions", n_questions - failed, n_questions))
