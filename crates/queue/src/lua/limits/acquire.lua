-- Admits one call under a service's limits (spec 59.2), or refuses it saying when to retry.
-- Every limit is checked before any is taken, so a refused call costs nothing.
--
-- KEYS: [1] rpm global  [2] rpm tenant  [3] day global  [4] day tenant
--       [5] slots global  [6] slots tenant        (one hash tag: one cluster slot)
-- ARGV: [1] rpm global  [2] rpm tenant  [3] day global  [4] day tenant
--       [5] slots global  [6] slots tenant  (0: no limit)
--       [7] lease id  [8] lease ms (how long a slot is held if never released)
--       [9] ms until the day's end (UTC)
-- Returns {1, 0, ''} when admitted; {0, retry_after_ms, which} when refused.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- GCRA: a key holds the theoretical arrival time (ms). One request a `interval`; bursts of
-- up to a second's worth are allowed.
local function gcra_wait(key, rpm)
  local interval = 60000 / rpm
  local burst = math.max(interval, 1000)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local wait = tat + interval - now - burst
  if wait > 0 then return math.ceil(wait), tat, interval end
  return 0, tat, interval
end

local checks = {}
for i = 1, 2 do
  local rpm = tonumber(ARGV[i])
  if rpm > 0 then
    local wait, tat, interval = gcra_wait(KEYS[i], rpm)
    if wait > 0 then
      return {0, wait, i == 1 and 'rpm_global' or 'rpm_per_tenant'}
    end
    checks[#checks + 1] = {KEYS[i], tat + interval}
  end
end

for i = 3, 4 do
  local cap = tonumber(ARGV[i])
  if cap > 0 and tonumber(redis.call('GET', KEYS[i]) or '0') >= cap then
    return {0, tonumber(ARGV[9]), i == 3 and 'daily_global' or 'daily_per_tenant'}
  end
end

for i = 5, 6 do
  local cap = tonumber(ARGV[i])
  if cap > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    if redis.call('ZCARD', KEYS[i]) >= cap then
      local first = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
      local wait = 1000
      if first[2] then wait = math.max(1, tonumber(first[2]) - now) end
      -- A slot frees when a call ends, usually long before its lease would.
      return {0, math.min(wait, 1000), i == 5 and 'concurrent_global' or 'concurrent_per_tenant'}
    end
  end
end

for _, c in ipairs(checks) do
  redis.call('SET', c[1], c[2], 'PX', math.ceil(c[2] - now) + 60000)
end
for i = 3, 4 do
  if tonumber(ARGV[i]) > 0 then
    redis.call('INCR', KEYS[i])
    redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[9]) + 3600000)
  end
end
local lease = tonumber(ARGV[8])
for i = 5, 6 do
  if tonumber(ARGV[i]) > 0 then
    redis.call('ZADD', KEYS[i], now + lease, ARGV[7])
    redis.call('PEXPIRE', KEYS[i], lease + 60000)
  end
end
return {1, 0, ''}
