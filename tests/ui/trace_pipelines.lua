-- trace_pipelines.lua — the traces trace.test.mjs looks at in the browser,
-- recorded by the real binary (`moonspan run --capture-content`). The
-- first argument picks which: fanout, failing, folded, content, xss, big,
-- growing.
local which = ...
local XSS = "<img src=x onerror=alert(1)>"

local pipelines = {}

-- 20 fetches at once: 20 bars that overlap, after a short plan step.
function pipelines.fanout()
    trace("fanout", function()
        span("plan", function() moonspan.sleep_ms(5) end)
        local fns = {}
        for i = 1, 20 do
            fns[i] = function()
                return span("fetch", {doc = i}, function() moonspan.sleep_ms(40) end)
            end
        end
        parallel(table.unpack(fns))
    end)
end

-- A step raises; the request fails with it.
function pipelines.failing()
    pcall(trace, "failing", function()
        span("load", function() moonspan.sleep_ms(2) end)
        span("parse", function()
            moonspan.sleep_ms(3)
            error({type = "ParseError", message = "unexpected token at line 3"})
        end)
    end)
end

-- 1,000 repetitions of one step, recorded as one fold.
function pipelines.folded()
    trace("folded", function()
        span("rerank", function()
            for _ = 1, 1000 do
                span("score_doc", {fold = true}, function() end)
            end
        end)
    end)
end

-- An LLM call whose prompt and answer are captured, priced and retried.
function pipelines.content()
    trace("content", function()
        llm.call{model = "mock", system = "Be brief.", max_tokens = 50,
                 messages = {{role = "user", content = "What is the capital of France?"}},
                 mock = {reply = "Paris.", latency_ms = 10, fail = {status = 429, times = 1}}}
        -- a call the script's own adapter records, streamed: with a time to first token
        span("chat claude-sonnet-4", function(s)
            moonspan.sleep_ms(8)
            s:record_llm{provider = "anthropic", model = "claude-sonnet-4", input_tokens = 100,
                         output_tokens = 20, cache_read_tokens = 30, cache_write_tokens = 10,
                         ttft_ms = 3, cost_usd = 0.0123}
        end)
    end)
end

-- Hostile text in a span's name, an attribute, an event and an error.
function pipelines.xss()
    pcall(trace, "xss " .. XSS, function()
        span(XSS, {note = XSS}, function(s)
            s:event(XSS, {why = XSS})
            error(XSS)
        end)
    end)
end

-- 20,000 spans: 200 steps of 99 sub-steps each, at staggered times.
function pipelines.big()
    trace("big", function()
        for i = 1, 200 do
            span("step", {i = i}, function()
                for _ = 1, 99 do
                    span("sub", function() end)
                end
            end)
        end
    end)
end

-- 40 batches of 1,000 items, 100 ms apart: a trace long enough to be
-- written in parts while it is open, for the page to follow as it grows.
function pipelines.growing()
    trace("growing", function()
        for i = 1, 40 do
            span("batch", {i = i}, function()
                for _ = 1, 1000 do span("item", function() end) end
            end)
            moonspan.sleep_ms(100)
        end
    end)
end

assert(pipelines[which], "give one of: fanout, failing, folded, content, xss, big, growing")()
