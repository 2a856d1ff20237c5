-- Posts (ARGV[4] = 'P') or voids ('V') a hold. ARGV: hold id, transfer id, amount posted.
-- Returns {status, avail or held, first}: 1 done, -1 not loaded, -2 no such hold, -3 more
-- than held; first 1 when the wallet must be marked for the syncer.
local w = redis.call('HMGET', W, 'avail', 'seq')
if not w[1] then return {-1, 0, 0} end
local hold, id, op = ARGV[1], ARGV[2], ARGV[4]
local h = redis.call('HGET', H, hold)
if not h then return {-2, 0, 0} end
local held, _, kind = string.match(h, '^(%d+):(%d+):(.*)$')
held = tonumber(held)
local actual = 0
if op == 'P' then actual = tonumber(ARGV[3]) end
if actual > held then return {-3, int(held), 0} end
redis.call('HDEL', H, hold)
local a = tonumber(w[1]) + held - actual
local seq = tonumber(w[2] or '0') + 1
redis.call('HSET', W, 'avail', int(a), 'seq', int(seq))
local entry = {o = op, id = id, h = hold, k = kind, a = actual, held = held}
return {1, int(a), journal(entry, seq, now_ms())}
