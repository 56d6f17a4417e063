-- A bad attrs table is refused before the span exists, so it leaves no
-- half-open span behind for later spans to nest under.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")

describe("span attrs", function()
  it("a table value raises a clear error and leaves no span open", function()
    local r = H.run_ok([[
      trace("t", function()
        local ok, err = pcall(span, "bad", {k = {}}, function() end)
        assert(not ok and err:find("attribute 'k' must be a string, number or boolean", 1, true), err)
        span("after", function() end)
      end)
    ]])
    local rows, by = H.spans(r.db, "t")
    assert.are.equal(2, #rows) -- the root and "after"; no "bad"
    assert.are.equal(by.t.id, by.after.parent)
  end)

  it("trace() refuses a bad attrs table before starting a trace", function()
    local r = H.run_ok([[
      local ok, err = pcall(trace, "t", {[1] = "x"}, function() end)
      assert(not ok and err:find("attribute keys must be strings", 1, true), err)
      trace("fine", function() end)
    ]])
    assert.are.equal(1, H.scalar(r.db, "SELECT count(*) FROM traces WHERE name = 'fine'"))
    assert.are.equal(0, H.scalar(r.db, "SELECT count(*) FROM traces WHERE name = 't'"))
  end)
end)
