-- One retrieval pipeline, instrumented at three levels of detail. Which
-- spans are recorded is chosen on the command line, not in the code:
--
--   moonspan run examples/granularity/pipeline.lua [REQUESTS]                     coarse
--   moonspan run --level debug examples/granularity/pipeline.lua [REQUESTS]       a span per document
--   moonspan run --level trace --fold 5 examples/granularity/pipeline.lua         every step, folded
--
-- info  (always): request, retrieve, rerank, generate
-- debug:          score_doc, one per candidate document (40 per request)
-- trace:          tokenize and overlap inside every score_doc
--
-- Runs offline on the `mock` provider. examples/granularity/README.md
-- shows what each level reveals and what it costs.

local requests = tonumber(arg[1]) or 20

local DEBUG, TRACE = {level = "debug"}, {level = "trace"}

-- A corpus with one very long document, which makes scoring slow for the
-- queries that retrieve it: invisible in a coarse trace, where it is only
-- a slow `rerank`.
local corpus = {}
for i = 1, 400 do
  local words = {}
  local n = i == 137 and 4000 or 60
  for w = 1, n do words[w] = "w" .. ((i * 31 + w * 7) % 500) end
  corpus[i] = table.concat(words, " ")
end

local function tokenize(text)
  return span("tokenize", TRACE, function()
    local set = {}
    for word in text:gmatch("%S+") do set[word] = true end
    return set
  end)
end

local function overlap(a, b)
  return span("overlap", TRACE, function()
    local n = 0
    for word in pairs(a) do if b[word] then n = n + 1 end end
    return n
  end)
end

local function retrieve(query, k)
  return span("retrieve", function()
    moonspan.sleep_ms(2)                                      -- an index lookup
    local hits = {}
    for i = 1, k do hits[i] = (#query * 13 + i * 47 + (i == 3 and 0 or 1)) % #corpus + 1 end
    if #query % 3 == 0 then hits[3] = 137 end                 -- some queries hit the long one
    return hits
  end)
end

local function rerank(query, hits)
  return span("rerank", function()
    local q = tokenize(query)
    local scored = {}
    for _, id in ipairs(hits) do
      span("score_doc", DEBUG, function(s)
        s:set("doc", id)
        scored[#scored + 1] = {id = id, score = overlap(q, tokenize(corpus[id]))}
      end)
    end
    table.sort(scored, function(a, b) return a.score > b.score end)
    return {scored[1].id, scored[2].id, scored[3].id}
  end)
end

local function generate(query, top)
  return span("generate", function()
    return llm.call{
      model = "mock", messages = {{role = "user", content = query .. " " .. table.concat(top, ",")}},
      mock = {reply = "An answer citing documents " .. table.concat(top, ", "), latency_ms = 5},
    }.text
  end)
end

for r = 1, requests do
  local query = "w" .. (r * 11 % 500) .. " w" .. (r * 17 % 500) .. string.rep(" w1", r % 4)
  trace("answer", {request = r}, function()
    local hits = retrieve(query, 40)
    local top = rerank(query, hits)
    generate(query, top)
  end)
end
