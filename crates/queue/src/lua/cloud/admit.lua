-- Admits one DigitalOcean request under the token's shared budget, or says how long to wait
-- (DECISIONS 107). Every limit is checked before any is taken: a refused request costs
-- nothing.
--
-- KEYS: [1] all/minute  [2] all/hour  [3] below-urgent/minute  [4] below-urgent/hour
--       [5] routine/minute  [6] routine/hour                  (one hash tag: one slot)
-- ARGV: [1] requests per minute  [2] requests per hour  [3] the minute window (ms)
--       [4] priority: 0 routine, 1 normal, 2 urgent
-- Returns 0 when admitted, else the milliseconds to wait.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local per_minute, per_hour = tonumber(ARGV[1]), tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local priority = tonumber(ARGV[4])

-- The share of each limit a key holds: everyone, everyone but urgent work, routine work.
local shares = {1.0, 0.8, 0.4}
-- Which keys a priority answers to: urgent the first pair, normal two, routine all three.
local pairs_for = {[0] = 3, [1] = 2, [2] = 1}

-- GCRA with the client's own shape: a small burst, and an emission interval that keeps any
-- window (sliding, as the server may count) under the limit, with a 5 % margin.
local function shape(limit, span)
  limit = math.max(1, math.floor(limit))
  local burst = math.min(10, math.max(1, math.floor(limit / 10)))
  local sustained = math.max(1, limit - burst - math.floor(limit / 20))
  local interval = span / sustained
  return interval, burst * interval
end

local checks = {}
local wait = 0
for p = 1, pairs_for[priority] do
  for w = 1, 2 do
    local key = KEYS[(p - 1) * 2 + w]
    local limit = (w == 1 and per_minute or per_hour) * shares[p]
    local span = (w == 1 and window or window * 60)
    local interval, tolerance = shape(limit, span)
    local tat = tonumber(redis.call('GET', key) or '0')
    if tat < now then tat = now end
    local late = tat + interval - now - tolerance
    if late > wait then wait = late end
    checks[#checks + 1] = {key, tat + interval, span}
  end
end
if wait > 0 then return math.ceil(wait) end
for _, c in ipairs(checks) do
  redis.call('SET', c[1], math.ceil(c[2]), 'PX', math.ceil(c[2] - now + c[3]))
end
return 0
