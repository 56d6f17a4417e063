-- trace(): return values, the context (id, set, add_tokens, add_error,
-- summary), nesting and errors.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")

describe("trace()", function()
  describe("in process", function()
    it("returns every value fn returns", function()
      local got = table.pack(trace("values", function() return 1, nil, "three", nil end))
      assert.are.equal(4, got.n)
      assert.are.equal(1, got[1])
      assert.is_nil(got[2])
      assert.are.equal("three", got[3])
    end)

    it("accepts an attrs table before fn", function()
      assert.are.equal("ok", trace("with attrs", {user = "u1"}, function() return "ok" end))
    end)

    it("gives ctx.id as 32 lowercase hex, new for each trace", function()
      local id1 = trace("id1", function(ctx) return ctx.id end)
      local id2 = trace("id2", function(ctx) return ctx.id end)
      assert.are.equal(32, #id1)
      assert.is_truthy(id1:match("^[0-9a-f]+$"), id1)
      assert.are_not.equal(id1, id2)
    end)

    it("uses the trace id in spans' trace_id and in the traceparent", function()
      trace("ids", function(ctx)
        span("inner", function(s)
          assert.are.equal(ctx.id, s.trace_id)
          local tp = moonspan.traceparent()
          assert.is_truthy(tp:match("^00%-" .. ctx.id .. "%-" .. s.id .. "%-%x%x$"), tp)
        end)
      end)
    end)

    it("raises the same error value and restores the caller", function()
      local e = {message = "failed inside"}
      local before = moonspan.current_span()
      local ok, got = pcall(trace, "raises", function() span("x", function() error(e) end) end)
      assert.is_false(ok)
      assert.is_true(rawequal(e, got))
      local after = moonspan.current_span()
      assert.are.equal(before and before.id, after and after.id)
      -- a new trace can start right after
      assert.are.equal(5, trace("next", function() return 5 end))
    end)

    it("refuses to nest, with a message that says so", function()
      local inner_ran = false
      local ok, err = pcall(trace, "outer", function()
        return trace("inner", function() inner_ran = true end)
      end)
      assert.is_false(ok)
      assert.is_false(inner_ran)
      assert.is_truthy(tostring(err):find("nest", 1, true), err)
      assert.is_truthy(tostring(err):find("inner", 1, true), err)
    end)

    it("refuses a trace inside a span of another trace", function()
      local ok, err = pcall(trace, "outer", function()
        span("step", function() trace("inner", function() end) end)
      end)
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("nest", 1, true), err)
    end)

    it("keeps ctx:summary() readable after the trace ended, with the span names", function()
      local saved = trace("summarised", function(ctx)
        span("first_step", function() span("nested_step", function() end) end)
        span("second_step", function() end)
        return ctx
      end)
      local text = saved:summary()
      assert.is_string(text)
      for _, name in ipairs({"summarised", "first_step", "nested_step", "second_step", saved.id}) do
        assert.is_truthy(text:find(name, 1, true), name .. " missing from:\n" .. text)
      end
      -- the nested step is indented deeper than its parent
      local indent_first = text:match("\n([^\n]-)first_step")
      local indent_nested = text:match("\n([^\n]-)nested_step")
      assert.is_truthy(#indent_nested > #indent_first, text)
    end)

    it("refuses to record on a ctx or span handle after the trace ended", function()
      local saved_ctx, saved_span
      trace("ended", function(ctx)
        saved_ctx = ctx
        span("s", function(s) saved_span = s end)
      end)
      local ok, err = pcall(saved_ctx.set, saved_ctx, "k", "v")
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("ended", 1, true), err)
      ok, err = pcall(saved_span.set, saved_span, "k", "v")
      assert.is_false(ok)
      assert.is_truthy(tostring(err):find("ended", 1, true), err)
    end)

    it("rejects negative or non-integer token counts", function()
      trace("bad tokens", function(ctx)
        local ok, err = pcall(ctx.add_tokens, ctx, {input = -1})
        assert.is_false(ok)
        assert.is_truthy(tostring(err):find("input", 1, true), err)
        ok = pcall(ctx.add_tokens, ctx, {output = "many"})
        assert.is_false(ok)
      end)
    end)

    it("refuses token counts beyond a trillion, so no total can overflow", function()
      trace("huge tokens", function(ctx)
        local ok, err = pcall(ctx.add_tokens, ctx, {input = math.maxinteger})
        assert.is_false(ok)
        assert.is_truthy(tostring(err):find("from 0 to 1000000000000", 1, true), err)
        -- the largest accepted value, many times: totals stay exact
        for _ = 1, 10 do ctx:add_tokens{input = 1000000000000} end
        assert.are.equal(10000000000000, ctx:totals().input_tokens)
      end)
    end)

    it("refuses a negative, infinite or NaN cost and a negative backoff", function()
      span("priced", function(s)
        for _, bad in ipairs({-1, 1 / 0, 0 / 0}) do
          local ok, err = pcall(s.record_llm, s, {provider = "x", model = "m", cost_usd = bad})
          assert.is_false(ok)
          assert.is_truthy(tostring(err):find("cost_usd must be a finite number", 1, true), err)
        end
        local ok, err = pcall(s.add_retries, s, 1, true, -5)
        assert.is_false(ok)
        assert.is_truthy(tostring(err):find("backoff_ms", 1, true), err)
      end)
    end)
  end)

  describe("in the store", function()
    local run = H.once(function()
      return H.run_ok([=[
        local id = trace("tr", {user = "u1"}, function(ctx)
          ctx:set("k", "v")
          ctx:set("n", 3)
          ctx:add_tokens{input = 100, output = 20}
          ctx:add_tokens{input = 5, output = 1, cache_read = 7, cache_write = 2}
          span("s1", function() end)
          return ctx.id
        end)
        print("ID=" .. id)
        trace("adderr", function(ctx)
          span("fine", function() end)
          ctx:add_error("soft failure")
        end)
        trace("typed_errors", function(ctx)
          ctx:add_error("judge said no", "wrong_answer")
          local ok, e = pcall(llm.call, {model = "mock", messages = {{role = "user", content = "x"}},
                                         retries = 0, mock = {fail = {status = 429}}})
          ctx:add_error(e) -- an llm.call error keeps its type
        end)
        trace("with_retry", function() span("retried", function(s) s:add_retries(2, true, 250) end) end)
        local ok, e = pcall(trace, "boom", function() error("hard failure", 0) end)
        assert(not ok and e == "hard failure")
        trace("llm_and_manual", function(ctx)
          llm.call{model = "mock", messages = {{role = "user", content = "hello world"}},
                   mock = {reply = "one two three"}}
          ctx:add_tokens{input = 10, output = 1}
        end)
      ]=], {name = "traces"})
    end)

    it("stores ctx.id as traces.trace_id", function()
      local r = run()
      local id = r.out:match("ID=(%x+)")
      assert.is_string(id)
      local rows = H.query(r.db, "SELECT name FROM traces WHERE trace_id = '" .. id .. "'")
      assert.are.same({{name = "tr"}}, rows)
    end)

    it("stores ctx:set and the attrs table in traces.attrs", function()
      local t = H.trace_row(run().db, "tr")
      assert.are.same({user = "u1", k = "v", n = 3}, H.json(t.attrs))
      assert.are.equal("ok", t.status)
      assert.are.equal(0, t.error_count)
      assert.are.equal(2, t.span_count)
    end)

    it("adds ctx:add_tokens to the trace's token totals", function()
      local t = H.trace_row(run().db, "tr")
      assert.are.equal(105, t.input_tokens)
      assert.are.equal(21, t.output_tokens)
      assert.are.equal(7, t.cache_read_tokens)
      assert.are.equal(2, t.cache_write_tokens)
    end)

    it("adds llm usage and manual tokens together", function()
      local t = H.trace_row(run().db, "llm_and_manual")
      local _, by = H.spans(run().db, "llm_and_manual")
      local llm_span = by["chat mock"]
      assert.is_truthy(llm_span.input_tokens > 0)
      assert.are.equal(llm_span.input_tokens + 10, t.input_tokens)
      assert.are.equal(llm_span.output_tokens + 1, t.output_tokens)
      assert.are.equal(llm_span.cost_usd, t.cost_usd)
    end)

    it("marks the trace error on ctx:add_error and stores an 'error' event", function()
      local db = run().db
      local t = H.trace_row(db, "adderr")
      assert.are.equal("error", t.status)
      assert.are.equal(1, t.error_count)
      local evs = H.events(db, "adderr")
      assert.are.equal(1, #evs)
      assert.are.equal("error", evs[1].name)
      local typed = H.query(db, "SELECT error_type, error_message FROM span_events WHERE name = 'error'")[1]
      assert.are.equal("error", typed.error_type)
      assert.are.equal("soft failure", typed.error_message)
      local _, by = H.spans(db, "adderr")
      assert.are.equal(by.adderr.id, evs[1].span)
      assert.are.equal("ok", by.fine.status)
    end)

    it("stores ctx:add_error's type, from an argument or an error table, and counts each", function()
      local db = run().db
      local t = H.trace_row(db, "typed_errors")
      assert.are.equal("error", t.status)
      local rows = H.query(db, "SELECT e.error_type, e.error_message FROM span_events e JOIN traces t"
                               .. " ON e.trace_row = t.id WHERE t.name = 'typed_errors' AND e.name = 'error'"
                               .. " ORDER BY e.rowid")
      assert.are.equal(2, #rows)
      assert.are.same({error_type = "wrong_answer", error_message = "judge said no"}, rows[1])
      assert.are.equal("rate_limit_error", rows[2].error_type)
      -- the root span carries the trace's status, as the header of `show` does
      local _, by = H.spans(db, "typed_errors")
      assert.are.equal("error", by.typed_errors.status)
    end)

    it("stores the time spent in backoff on the span", function()
      local _, by = H.spans(run().db, "with_retry")
      assert.are.equal(250e6, H.scalar(run().db, "SELECT backoff_ns FROM spans WHERE name = 'retried'"))
      assert.are.equal(2, by.retried.retries)
    end)

    it("prints typed manual errors in the timeline, not JSON", function()
      local r = H.run_ok([[trace("soft", function(ctx) ctx:add_error("not good", "quality") end)]], {quiet = false})
      assert.is_truthy(r.err:find("ERROR (ctx:add_error) quality: not good", 1, true), r.err)
      assert.is_nil(r.err:find('{"type"', 1, true), r.err)
    end)

    it("stores a trace whose body raised with status error", function()
      local db = run().db
      local t = H.trace_row(db, "boom")
      assert.are.equal("error", t.status)
      assert.are.equal(1, t.error_count)
      local _, by = H.spans(db, "boom")
      assert.are.equal("error", by.boom.status)
      assert.are.equal(1, by.boom.error_own)
      assert.are.equal("hard failure", by.boom.error_message)
    end)

    it("does not add an implicit run trace when the script opens its own", function()
      local n = H.scalar(run().db, "SELECT count(*) FROM traces WHERE name = 'traces'")
      assert.are.equal(0, n)
    end)
  end)
end)
