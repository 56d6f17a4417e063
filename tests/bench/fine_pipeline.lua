-- A fine pipeline: 2,000 steps a request (score 1,000 documents, each
-- tokenized first), CPU-bound so nothing hides the overhead. run.sh runs
-- it with no spans at all, then with its steps as spans, as folds, below
-- the level, and timed by moonspan.fold, and prints each against none.
local mode, requests = arg[1] or "none", tonumber(arg[2]) or 20

local docs = {}
for i = 1, 1000 do
  local w = {}
  for k = 1, 12 do w[k] = "w" .. ((i * 7 + k * 13) % 300) end
  docs[i] = table.concat(w, " ")
end

local function tokenize(text)
  local set = {}
  for word in text:gmatch("%S+") do set[word] = true end
  return set
end

local function overlap(q, set)
  local n = 0
  for word in pairs(set) do if q[word] then n = n + 1 end end
  return n
end

local opts = ({spans = nil, fold = {fold = true}, skipped = {level = "debug"}})[mode]

local function request(q)
  local best = 0
  if mode == "none" then
    for i = 1, #docs do
      local s = overlap(q, tokenize(docs[i]))
      if s > best then best = s end
    end
  elseif mode == "rep" then
    local score_rep, tok_rep = moonspan.fold("score_doc"), moonspan.fold("tokenize")
    local t = moonspan.clock()
    for i = 1, #docs do
      local set = tokenize(docs[i])
      tok_rep(t)                                   -- tokenize: from t to now
      local s = overlap(q, set)
      t = score_rep(t)                             -- score_doc: from t to now, which starts the next
      if s > best then best = s end
    end
  elseif opts then
    for i = 1, #docs do
      local s = span("score_doc", opts, function()
        return overlap(q, span("tokenize", opts, function() return tokenize(docs[i]) end))
      end)
      if s > best then best = s end
    end
  else
    for i = 1, #docs do
      local s = span("score_doc", function()
        return overlap(q, span("tokenize", function() return tokenize(docs[i]) end))
      end)
      if s > best then best = s end
    end
  end
  return best
end

local t0 = moonspan.now_ms()
for r = 1, requests do
  trace("request", function() request(tokenize("w" .. r .. " w" .. (r * 3) .. " w" .. (r * 5))) end)
end
print(string.format("%s %.1f", mode, moonspan.now_ms() - t0))
