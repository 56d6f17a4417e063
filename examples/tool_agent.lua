-- A tool-using agent loop, offline on the `mock` provider.
--
-- The model is given tools; while it answers with tool calls, each call
-- runs as its own span ("tool:<name>") and its result goes back as a
-- `tool` message; the loop ends when the model answers in text. The same
-- loop runs against Anthropic, OpenAI or Ollama: llm.call takes `tools` and
-- returns `tool_calls` in one shape for every provider.
--
--   moonspan run examples/tool_agent.lua ["What is 17 * 23 in Paris time?"]

local question = arg[1] or "What is 17 * 23, and what time is it in Paris?"

local tools = {
  {name = "calculator", description = "Evaluates an arithmetic expression.",
   parameters = {type = "object", properties = {expression = {type = "string"}},
                 required = {"expression"}}},
  {name = "clock", description = "The current time in a city.",
   parameters = {type = "object", properties = {city = {type = "string"}}, required = {"city"}}},
}

local implementations = {
  calculator = function(args)
    local a, op, b = args.expression:match("^%s*(%-?%d+)%s*([%+%-%*/])%s*(%-?%d+)%s*$")
    if not a then error("calculator: cannot parse '" .. args.expression .. "'") end
    a, b = tonumber(a), tonumber(b)
    local ops = {["+"] = a + b, ["-"] = a - b, ["*"] = a * b, ["/"] = b ~= 0 and a / b or nil}
    return tostring(ops[op])
  end,
  clock = function(args)
    moonspan.sleep_ms(20) -- a remote API, in real life
    return args.city .. ": 14:05"
  end,
}

-- The scripted model: first it asks for both tools, then it answers from
-- their results. A real model decides this itself.
local function mock_model(req)
  local last = req.messages[#req.messages]
  if last.role ~= "tool" then
    return {text = "Let me look that up.", tool_calls = {
      {name = "calculator", arguments = {expression = "17 * 23"}},
      {name = "clock", arguments = {city = "Paris"}},
    }}
  end
  local results = {}
  for _, m in ipairs(req.messages) do
    if m.role == "tool" then results[#results + 1] = m.content end
  end
  return "17 * 23 = " .. results[1] .. ", and in " .. results[2] .. "."
end

local answer = trace("tool_agent", {question = question}, function(ctx)
  local messages = {{role = "user", content = question}}
  for turn = 1, 5 do
    local resp = span("turn", {turn = turn}, function()
      return llm.call{model = "mock", messages = messages, tools = tools,
                      mock = {reply = mock_model, latency_ms = 60}}
    end)
    if not resp.tool_calls then return resp.text end
    messages[#messages + 1] = {role = "assistant", content = resp.text, tool_calls = resp.tool_calls}
    for _, call in ipairs(resp.tool_calls) do
      local result = span("tool:" .. call.name, function(s)
        s:set("tool.arguments", call.arguments_json)
        return implementations[call.name](call.arguments)
      end)
      messages[#messages + 1] = {role = "tool", tool_call_id = call.id, content = result}
    end
  end
  ctx:add_error("no answer after 5 turns")
end)

print(answer)
