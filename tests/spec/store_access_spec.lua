-- Reading a store the user cannot write (another user's, read-only
-- media), and paths that are not files at all.
local H = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "helpers.lua")
local q = H.q

local function make_store(dir)
  local r = H.run_ok([[trace("kept", function() span("step", function() end) end)]], {dir = dir})
  return r.db
end

local function nobody(args)
  local parts = {"setpriv --reuid=65534 --regid=65534 --clear-groups", q(H.bin)}
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  return H.sh(table.concat(parts, " "))
end

describe("a store this user cannot write", function()
  it("is read by report, traces and show when it belongs to someone else", function()
    if not H.is_root() then pending("needs root to act as another user") return end
    -- a folder of its own under /tmp: the test folders may sit in one only root can enter
    local p = assert(io.popen("mktemp -d /tmp/moonspan-owned.XXXXXX"))
    local dir = p:read("l")
    p:close()
    finally(function() os.execute("rm -rf " .. q(dir)) end)
    local db = make_store(dir)
    assert(os.execute("chmod 755 " .. q(dir) .. " && chmod 644 " .. q(db)))
    local tr = nobody({"--db", db, "traces"})
    assert.are.equal(0, tr.code, tr.err)
    assert.is_truthy(tr.out:find("kept", 1, true), tr.out)
    local id = H.scalar(db, "SELECT trace_id FROM traces WHERE name = 'kept'")
    local show = nobody({"--db", db, "show", id})
    assert.are.equal(0, show.code, show.err)
    assert.is_truthy(show.out:find("step", 1, true), show.out)
    local rep = nobody({"--db", db, "report", "--json"})
    assert.are.equal(0, rep.code, rep.err)
    assert.are.equal(1, H.json(rep.out).requests.count)
    -- and nothing was left behind next to it
    assert.is_false(H.exists(db .. "-shm"))
  end)

  it("is read on read-only media", function()
    local dir = H.tmpdir("romedia")
    local db = make_store(dir)
    local r = H.sh(string.format([[
      unshare --user --map-root-user --mount sh -ec '
        mount --bind %s %s
        mount -o remount,bind,ro %s
        if touch %s/probe 2>/dev/null; then echo "not read-only"; exit 9; fi
        %s --db %s report --json'
    ]], q(dir), q(dir), q(dir), q(dir), q(H.bin), q(db)))
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.are.equal(1, H.json(r.out).requests.count)
  end)
end)

describe("a --db that is not a regular file", function()
  it("is refused at once, not waited on (a FIFO)", function()
    local dir = H.tmpdir("fifo")
    assert(os.execute("mkfifo " .. q(dir .. "/pipe")))
    for _, cmd in ipairs({"report", "traces", "run --quiet " .. q(H.write(dir .. "/s.lua", ""))}) do
      -- a reader that opened the FIFO would block until `timeout` ends it (124)
      local r = H.sh(string.format("timeout 5 %s --db %s %s", q(H.bin), q(dir .. "/pipe"), cmd))
      assert.are.equal(2, r.code, cmd .. ": " .. r.err)
      assert.is_truthy(r.err:find("is not a regular file (a FIFO)", 1, true), cmd .. ": " .. r.err)
    end
  end)

  it("is refused when it is a device", function()
    local r = H.moonspan({"--db", "/dev/null", "report"})
    assert.are.equal(2, r.code)
    assert.is_truthy(r.err:find("not a regular file (a device)", 1, true), r.err)
  end)
end)
