-- Gives a hold's money back without a journal entry: the ledger expired it itself.
-- ARGV[1]: hold id. Returns 1 when it was held.
local h = redis.call('HGET', H, ARGV[1])
if not h or redis.call('EXISTS', W) == 0 then return 0 end
local held = tonumber(string.match(h, '^(%d+):'))
redis.call('HDEL', H, ARGV[1])
redis.call('HINCRBY', W, 'avail', held)
return 1
