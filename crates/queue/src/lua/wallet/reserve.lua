-- ARGV: hold id, amount, timeout s, kind, reference.
-- Returns {status, avail}: 1 reserved, 2 reserved before (the same hold id), 0 short,
-- 3 halted, -1 not loaded.
if redis.call('EXISTS', W) == 0 then return {-1, 0} end
local hold, amount, timeout = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local a = avail()
if redis.call('HEXISTS', H, hold) == 1 then return {2, int(a)} end
if redis.call('HGET', W, 'halted') == '1' then return {3, int(a)} end
if a < amount then return {0, int(a)} end
a = redis.call('HINCRBY', W, 'avail', -amount)
redis.call('HSET', H, hold, int(amount) .. ':' .. int(now_ms() + timeout * 1000) .. ':' .. ARGV[4])
journal({o = 'R', h = hold, k = ARGV[4], a = amount, t = timeout, r = ARGV[5]})
return {1, int(a)}
