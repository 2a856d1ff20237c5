-- ARGV: hold id, amount, timeout s, kind, reference.
-- Returns {status, avail, first}: status 1 reserved, 2 reserved before (the same hold id),
-- 0 short, 3 halted, -1 not loaded; first 1 when the wallet must be marked for the syncer.
local w = redis.call('HMGET', W, 'avail', 'halted', 'seq')
if not w[1] then return {-1, 0, 0} end
local hold, amount, timeout = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local a = tonumber(w[1])
if redis.call('HEXISTS', H, hold) == 1 then return {2, int(a), 0} end
if w[2] == '1' then return {3, int(a), 0} end
if a < amount then return {0, int(a), 0} end
a = a - amount
local seq = tonumber(w[3] or '0') + 1
local now = now_ms()
redis.call('HSET', W, 'avail', int(a), 'seq', int(seq))
redis.call('HSET', H, hold, int(amount) .. ':' .. int(now + timeout * 1000) .. ':' .. ARGV[4])
local entry = {o = 'R', h = hold, k = ARGV[4], a = amount, t = timeout, r = ARGV[5]}
return {1, int(a), journal(entry, seq, now)}
