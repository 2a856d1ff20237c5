-- The wallet as one consistent picture: {loaded, avail, seq, halted, holds, journal} with the
-- journal's first ARGV[1] entries and its length.
if redis.call('EXISTS', W) == 0 then return {0} end
local n = tonumber(ARGV[1])
return {1, redis.call('HGET', W, 'avail'), redis.call('HGET', W, 'seq'),
        redis.call('HGET', W, 'halted'), redis.call('HLEN', H),
        redis.call('LLEN', J), redis.call('LRANGE', J, 0, n - 1)}
