-- Sets avail to ARGV[2] if no entry was journaled since the caller's snapshot (seq is still
-- ARGV[1]). Returns 1 when set.
if redis.call('EXISTS', W) == 0 then return 0 end
if redis.call('HGET', W, 'seq') ~= ARGV[1] then return 0 end
redis.call('HSET', W, 'avail', ARGV[2])
return 1
