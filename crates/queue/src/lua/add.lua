-- ARGV: id, queue, payload, max_attempts, delay_ms, keep_ms.
-- An existing id is an idempotency hit: nothing changes, its state is returned.
local id, queue = ARGV[1], ARGV[2]
local k = jk(id)
local state = redis.call('HGET', k, 'state')
if state then return {0, state} end
local now = now_ms()
local delay = tonumber(ARGV[5])
local seq = redis.call('INCR', P .. ':seq')
redis.call('HSET', k, 'queue', queue, 'payload', ARGV[3], 'max_attempts', ARGV[4],
  'attempts', 0, 'stalls', 0, 'seq', seq, 'created_ms', now, 'available_ms', now + delay,
  'keep_ms', ARGV[6])
if delay > 0 then
  redis.call('HSET', k, 'state', 'delayed')
  redis.call('ZADD', P .. ':delayed:' .. queue, now + delay, id)
else
  redis.call('HSET', k, 'state', 'waiting')
  redis.call('RPUSH', P .. ':wait:' .. queue, id)
end
return {1, 'created'}
