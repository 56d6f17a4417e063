-- retry{attempts=, backoff_ms=, fn}: re-runs, re-raises unchanged, and the
-- enclosing span records retries and whether they saved the call.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")

describe("retry()", function()
  describe("in process", function()
    it("succeeds after n failures, passing the attempt number", function()
      local calls, seen = 0, {}
      local a, b, c = retry{attempts = 5, backoff_ms = 1, function(attempt)
        calls = calls + 1
        seen[#seen + 1] = attempt
        if calls < 3 then error("flaky " .. calls) end
        return "ok", nil, calls
      end}
      assert.are.equal(3, calls)
      assert.are.same({1, 2, 3}, seen)
      assert.are.equal("ok", a)
      assert.is_nil(b)
      assert.are.equal(3, c)
    end)

    it("accepts fn = as well as the first array item", function()
      local calls = 0
      assert.are.equal("done", retry{attempts = 2, backoff_ms = 0, fn = function()
        calls = calls + 1
        if calls == 1 then error("once") end
        return "done"
      end})
      assert.are.equal(2, calls)
    end)

    it("does not retry after a success", function()
      local calls = 0
      retry{attempts = 4, backoff_ms = 0, function() calls = calls + 1 end}
      assert.are.equal(1, calls)
    end)

    it("re-raises the very same error value after the last attempt", function()
      local e = {type = "permanent"}
      local calls = 0
      local ok, got = pcall(retry, {attempts = 3, backoff_ms = 0, function()
        calls = calls + 1
        error(e)
      end})
      assert.is_false(ok)
      assert.is_true(rawequal(e, got))
      assert.are.equal(3, calls)
      local ok2, got2 = pcall(retry, {attempts = 2, backoff_ms = 0, function() error("text", 0) end})
      assert.is_false(ok2)
      assert.are.equal("text", got2)
    end)

    it("stops early when retry_if says no", function()
      local calls = 0
      local e = {retryable = false}
      local ok, got = pcall(retry, {attempts = 5, backoff_ms = 0,
        retry_if = function(err) return err.retryable end,
        function() calls = calls + 1 error(e) end})
      assert.is_false(ok)
      assert.is_true(rawequal(e, got))
      assert.are.equal(1, calls)
    end)

    it("waits no longer than the backoff cap", function()
      local t0 = moonspan.now_ms()
      pcall(retry, {attempts = 4, backoff_ms = 5000, max_backoff_ms = 5, function() error("x") end})
      local elapsed = moonspan.now_ms() - t0
      assert.is_truthy(elapsed < 1000, "took " .. elapsed .. " ms")
    end)

    it("gives clear errors for bad options", function()
      local cases = {
        {{attempts = 0, function() end}, "attempts"},
        {{attempts = 1.5, function() end}, "attempts"},
        {{attempts = 2}, "function"},
        {{attempts = 2, fn = "not a function"}, "function"},
        {{backoff_ms = -1, function() end}, "backoff_ms"},
        {{retry_if = 1, function() end}, "retry_if"},
      }
      for _, case in ipairs(cases) do
        local calls = 0
        if type(case[1][1]) == "function" then case[1][1] = function() calls = calls + 1 end end
        local ok, err = pcall(retry, case[1])
        assert.is_false(ok, case[2])
        assert.is_string(err)
        assert.is_truthy(err:find(case[2], 1, true), err)
        assert.is_truthy(err:find("retry", 1, true), err)
        assert.are.equal(0, calls, "fn ran despite bad options: " .. err)
      end
      local ok, err = pcall(retry, "nope")
      assert.is_false(ok)
      assert.is_truthy(err:find("table", 1, true), err)
    end)
  end)

  describe("in the store", function()
    local run = H.once(function()
      return H.run_ok([=[
        trace("rt", function()
          span("flaky", function()
            local n = 0
            retry{attempts = 4, backoff_ms = 2, function()
              n = n + 1
              if n < 3 then error("transient " .. n, 0) end
            end}
          end)
          pcall(span, "hopeless", function()
            retry{attempts = 2, backoff_ms = 1, function() error({type = "permanent", message = "no"}) end}
          end)
          span("first_try", function()
            retry{attempts = 3, backoff_ms = 1, function() end}
          end)
          span("no_retry", function() end)
        end)
      ]=], {name = "retries"})
    end)

    it("records retries and retry_succeeded=1 on the enclosing span", function()
      local _, by = H.spans(run().db, "rt")
      assert.are.equal("ok", by.flaky.status)
      assert.are.equal(2, by.flaky.retries)
      assert.are.equal(1, by.flaky.retry_succeeded)
    end)

    it("records each failed attempt as a retry event with a bounded wait", function()
      local db = run().db
      local _, by = H.spans(db, "rt")
      local evs = {}
      for _, e in ipairs(H.events(db, "rt")) do
        if e.span == by.flaky.id then evs[#evs + 1] = e end
      end
      assert.are.equal(2, #evs)
      for i, e in ipairs(evs) do
        assert.are.equal("retry", e.name)
        local a = H.json(e.attrs)
        assert.are.equal(i, a.attempt)
        assert.is_truthy(a.error:find("transient " .. i, 1, true), e.attrs)
        assert.is_truthy(a.wait_ms >= 0 and a.wait_ms <= 2 * 2 ^ (i - 1), e.attrs)
      end
    end)

    it("records retry_succeeded=0 when the attempts ran out", function()
      local _, by = H.spans(run().db, "rt")
      assert.are.equal("error", by.hopeless.status)
      assert.are.equal(1, by.hopeless.retries)
      assert.are.equal(0, by.hopeless.retry_succeeded)
      assert.are.equal("permanent", by.hopeless.error_type)
    end)

    it("records no retry when the first attempt succeeds", function()
      local _, by = H.spans(run().db, "rt")
      assert.are.equal(0, by.first_try.retries)
      assert.is_nil(by.first_try.retry_succeeded)
      assert.are.equal(0, by.no_retry.retries)
      assert.is_nil(by.no_retry.retry_succeeded)
    end)
  end)
end)
