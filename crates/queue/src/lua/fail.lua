-- ARGV: worker id, job id, error, permanent (0/1), backoff ms for this attempt.
-- Retries after the backoff, or dead-letters a permanent failure or the last attempt.
local worker, id, err = ARGV[1], ARGV[2], ARGV[3]
local k = jk(id)
if redis.call('HGET', k, 'state') ~= 'active' or redis.call('HGET', k, 'worker') ~= worker then
  return {'lost', 0}
end
local now = now_ms()
local q = redis.call('HGET', k, 'queue')
redis.call('ZREM', P .. ':active', id)
redis.call('HINCRBY', P .. ':inflight', q, -1)
redis.call('HINCRBY', P .. ':stats:' .. q, 'failed', 1)
redis.call('HSET', k, 'last_error', err, 'worker', '')
local attempts = tonumber(redis.call('HGET', k, 'attempts'))
local max = tonumber(redis.call('HGET', k, 'max_attempts'))
if ARGV[4] == '1' or attempts >= max then
  to_dead(id, q, err, now)
  return {'dead', 0}
end
local at = now + tonumber(ARGV[5])
redis.call('HSET', k, 'state', 'delayed', 'available_ms', at)
redis.call('ZADD', P .. ':delayed:' .. q, at, id)
event('failed', id, q, {'error', err, 'attempt', tostring(attempts), 'retry_at', tostring(at)})
return {'retry', at}
