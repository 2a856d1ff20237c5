-- Posts (ARGV[4] = 'P') or voids ('V') a hold. ARGV: hold id, transfer id, amount posted.
-- Returns {status, avail or held}: 1 done, -1 not loaded, -2 no such hold, -3 more than held.
if redis.call('EXISTS', W) == 0 then return {-1, 0} end
local hold, id, op = ARGV[1], ARGV[2], ARGV[4]
local h = redis.call('HGET', H, hold)
if not h then return {-2, 0} end
local held, _, kind = string.match(h, '^(%d+):(%d+):(.*)$')
held = tonumber(held)
local actual = 0
if op == 'P' then actual = tonumber(ARGV[3]) end
if actual > held then return {-3, int(held)} end
redis.call('HDEL', H, hold)
local a = redis.call('HINCRBY', W, 'avail', held - actual)
journal({o = op, id = id, h = hold, k = kind, a = actual, held = held})
return {1, int(a)}
