-- moonspan.stats through Lua: reference values worked out here (exact
-- products, the textbook formulas), determinism of the bootstrap, and the
-- errors bad arguments raise.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local H = dofile(here .. "helpers.lua")

local stats = moonspan.stats
local Z975 = 1.959963984540054 -- the 0.975 normal quantile

local function near(want, got, eps)
  assert(got ~= nil and math.abs(got - want) <= eps,
         ("expected %.15g, got %s (eps %g)"):format(want, tostring(got), eps))
end

-- C(n, k) as a product
local function choose(n, k)
  local c = 1
  for i = 1, k do c = c * (n - k + i) / i end
  return c
end

local function binom_cdf(k, n, p)
  local s = 0
  for i = 0, k do s = s + choose(n, i) * p ^ i * (1 - p) ^ (n - i) end
  return s
end

-- k / n and Wilson's interval (helpers.lua)
local function wilson(k, n, z)
  return k / n, H.wilson(k, n, z)
end

local function errmsg(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error")
  return tostring(err)
end

local function has(s, frag)
  assert(s:find(frag, 1, true), ("%q does not contain %q"):format(s, frag))
end

describe("moonspan.stats", function()
  it("mcnemar is the exact two-sided binomial test", function()
    near(2 * binom_cdf(0, 6, 0.5), stats.mcnemar(0, 6), 1e-15)
    near(0.03125, stats.mcnemar(6, 0), 1e-15)
    near(2 * 11 / 1024, stats.mcnemar(1, 9), 1e-15)
    near(2 * binom_cdf(7, 30, 0.5), stats.mcnemar(23, 7), 1e-14)
    assert.are.equal(1, stats.mcnemar(5, 5))
    assert.are.equal(1, stats.mcnemar(0, 0))
  end)

  it("fisher sums the tables no likelier than the one seen", function()
    -- enumerate every table with the margins of 7 of 20 against 15 of 22
    local k1, n1, k2, n2 = 7, 20, 15, 22
    local k, total = k1 + k2, choose(n1 + n2, k1 + k2)
    local seen = choose(n1, k1) * choose(n2, k2) / total
    local p = 0
    for x = math.max(0, k - n2), math.min(n1, k) do
      local px = choose(n1, x) * choose(n2, k - x) / total
      if px <= seen * (1 + 1e-7) then p = p + px end
    end
    near(p, stats.fisher(k1, n1, k2, n2), 1e-12)
    near(34 / 70, stats.fisher(3, 4, 1, 4), 1e-13)
    near(2 / choose(20, 10), stats.fisher(0, 10, 10, 10), 1e-16)
  end)

  it("wilson and prop_diff follow Wilson's and Newcombe's formulas", function()
    local w = stats.wilson(0, 10)
    assert.are.equal(0, w.est)
    assert.are.equal(0, w.lo)
    near(0.2775, w.hi, 5e-5)
    local p, lo, hi = wilson(37, 52, Z975)
    w = stats.wilson(37, 52)
    near(p, w.est, 1e-15); near(lo, w.lo, 1e-12); near(hi, w.hi, 1e-12)
    -- at 90%: z = 1.6448536269514722
    p, lo, hi = wilson(37, 52, 1.6448536269514722)
    w = stats.wilson(37, 52, 0.90)
    near(lo, w.lo, 1e-12); near(hi, w.hi, 1e-12)

    local p1, l1, u1 = wilson(56, 70, Z975)
    local p2, l2, u2 = wilson(48, 80, Z975)
    local d = stats.prop_diff(56, 70, 48, 80)
    near(p2 - p1, d.est, 1e-15)
    near(p2 - p1 - math.sqrt((p2 - l2) ^ 2 + (u1 - p1) ^ 2), d.lo, 1e-12)
    near(p2 - p1 + math.sqrt((u2 - p2) ^ 2 + (p1 - l1) ^ 2), d.hi, 1e-12)
  end)

  it("wilson and prop_diff of no trials have no interval", function()
    local w = stats.wilson(0, 0)
    assert.is_nil(w.est); assert.is_nil(w.lo); assert.is_nil(w.hi)
    assert.is_nil(stats.prop_diff(0, 0, 3, 4).est)
  end)

  it("mde_mean and mde_mcnemar", function()
    -- (z_0.975 + z_0.8) * sd / sqrt(n), z_0.8 = 0.8416212335729143
    near((Z975 + 0.8416212335729143) * 3 / math.sqrt(50), stats.mde_mean(3, 50), 1e-12)
    -- z_0.995 = 2.5758293035489, z_0.9 = 1.2815515655446004
    near((2.5758293035489 + 1.2815515655446004) * 3 / 10, stats.mde_mean(3, 100, 0.99, 0.9), 1e-11)
    assert.is_nil(stats.mde_mean(3, 1))
    -- 2 * 0.5^m < 0.05 first at m = 6
    near(6 / 40, stats.mde_mcnemar(40), 1e-15)
    assert.is_nil(stats.mde_mcnemar(5))
  end)

  it("bootstrap_diff estimates stat(b) - stat(a) and brackets it", function()
    local a, b = {}, {}
    for i = 1, 60 do a[i] = 100 + (i * 37 % 23) end  -- 100..122
    for i = 1, 50 do b[i] = 110 + (i * 29 % 31) end  -- 110..140
    local function mean(v) local s = 0 for _, x in ipairs(v) do s = s + x end return s / #v end
    local m = stats.bootstrap_diff(a, b)
    near(mean(b) - mean(a), m.est, 1e-12)
    assert.is_true(m.lo < m.est and m.est < m.hi)
    local sa = moonspan.percentiles(a, {95})[1]
    local sb = moonspan.percentiles(b, {95})[1]
    local q = stats.bootstrap_diff(a, b, {stat = 95})
    near(sb - sa, q.est, 1e-12)
    assert.is_true(q.lo <= q.est and q.est <= q.hi)
    -- a wider level gives a wider interval from the same resamples
    local w80 = stats.bootstrap_diff(a, b, {level = 0.8})
    local w99 = stats.bootstrap_diff(a, b, {level = 0.99})
    assert.is_true(w99.lo < w80.lo and w80.hi < w99.hi)
  end)

  it("bootstrap is deterministic for a seed and differs across seeds", function()
    local a, b = {}, {}
    for i = 1, 40 do a[i] = (i * 7919) % 101; b[i] = (i * 104729) % 113 end
    for _, stat in ipairs{"mean", 50, 95} do
      local x = stats.bootstrap_diff(a, b, {stat = stat})
      local y = stats.bootstrap_diff(a, b, {stat = stat, seed = moonspan.stats.SEED, resamples = 2000})
      local z = stats.bootstrap_diff(a, b, {stat = stat, seed = 99})
      assert.are.same(x, y)
      assert.are.equal(x.est, z.est)
      assert.is_true(x.lo ~= z.lo or x.hi ~= z.hi)
    end
    local d = {}
    for i = 1, 30 do d[i] = (i % 5) - 1.5 end
    assert.are.same(stats.paired_mean(d, {seed = 4}), stats.paired_mean(d, {seed = 4}))
  end)

  it("paired_mean is the mean of the differences with an interval", function()
    local d = {}
    local s = 0
    for i = 1, 80 do d[i] = ((i * 31) % 17) / 4 - 1; s = s + d[i] end
    local r = stats.paired_mean(d, {resamples = 4000})
    near(s / 80, r.est, 1e-12)
    -- the sd of the mean is sd / sqrt(n); a 95% interval spans ~3.92 of it
    local v = 0
    for i = 1, 80 do v = v + (d[i] - s / 80) ^ 2 end
    local se = math.sqrt(v / 80 / 80)
    local width = r.hi - r.lo
    assert.is_true(width > 3.92 * se * 0.85 and width < 3.92 * se * 1.15,
                   ("width %g against %g"):format(width, 3.92 * se))
  end)

  it("an empty sample has no interval", function()
    local r = stats.bootstrap_diff({}, {1, 2, 3})
    assert.is_nil(r.est); assert.is_nil(r.lo); assert.is_nil(r.hi)
    assert.is_nil(stats.paired_mean({}).est)
  end)

  it("bad arguments raise errors that name them", function()
    has(errmsg(stats.bootstrap_diff, nil, {}), "bootstrap_diff: a must be a list of numbers, got nil")
    has(errmsg(stats.bootstrap_diff, {1}, {1, "x"}), "b[2] is a string, not a finite number")
    has(errmsg(stats.bootstrap_diff, {1, 0 / 0}, {1}), "a[2] is")
    has(errmsg(stats.bootstrap_diff, {1}, {1}, {stat = 101}), "opts.stat must be \"mean\" or a percentile from 0 to 100")
    has(errmsg(stats.bootstrap_diff, {1}, {1}, {stat = "median"}), "opts.stat must be")
    has(errmsg(stats.bootstrap_diff, {1}, {1}, {resamples = 0}), "opts.resamples must be a whole number from 1")
    has(errmsg(stats.bootstrap_diff, {1}, {1}, {level = 95}), "opts.level must be between 0 and 1 exclusive (e.g. 0.95)")
    has(errmsg(stats.bootstrap_diff, {1}, {1}, {seed = -1}), "opts.seed must be a whole number >= 0")
    has(errmsg(stats.bootstrap_diff, {1}, {1}, {resample = 10}), "unknown option 'resample' (known: stat, resamples, level, seed)")
    has(errmsg(stats.bootstrap_diff, {1}, {1}, "mean"), "opts must be a table")
    has(errmsg(stats.paired_mean, {1}, {stat = 50}), "paired_mean: unknown option 'stat'")
    has(errmsg(stats.mcnemar, -1, 2), "mcnemar: b (pass -> fail pairs) must be a whole number >= 0")
    has(errmsg(stats.mcnemar, 1, 2.5), "c (fail -> pass pairs) must be a whole number")
    has(errmsg(stats.fisher, 5, 4, 1, 4), "fisher: k1 (5) must not exceed n1 (4)")
    has(errmsg(stats.wilson, 1, 2, 95), "wilson: level must be between 0 and 1")
    has(errmsg(stats.prop_diff, 1, 2, 3, nil), "prop_diff: n2 must be a whole number")
    has(errmsg(stats.mde_mean, -1, 10), "mde_mean: sd must be a finite number >= 0")
    has(errmsg(stats.mde_mean, 1, 10, 0.95, 80), "mde_mean: power must be between 0 and 1")
    has(errmsg(stats.mde_mcnemar, "ten"), "mde_mcnemar: n must be a whole number >= 0, got string")
  end)

  it("is there in `moonspan run`, and an error in it exits 1 with the message", function()
    local r = H.run_script([[
      local m = moonspan.stats.mcnemar(0, 6)
      print(("p=%.5f"):format(m))
      moonspan.stats.wilson(3, 2)
    ]])
    assert.are.equal(1, r.code)
    has(r.out, "p=0.03125")
    has(r.err, "moonspan.stats.wilson: k (3) must not exceed n (2): give successes, then trials")
  end)
end)
