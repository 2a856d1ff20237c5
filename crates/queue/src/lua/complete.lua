-- ARGV: config JSON, worker id, job id, claim next n (0 for none).
-- Completes a job this worker holds, then claims up to n more in the same round trip.
local cfg = cjson.decode(ARGV[1])
local worker, id = ARGV[2], ARGV[3]
local k = jk(id)
local owned = redis.call('HGET', k, 'state') == 'active' and redis.call('HGET', k, 'worker') == worker
local status = 'lost'
if owned then
  local now = now_ms()
  local q = redis.call('HGET', k, 'queue')
  redis.call('ZREM', P .. ':active', id)
  redis.call('HINCRBY', P .. ':inflight', q, -1)
  redis.call('HINCRBY', P .. ':stats:' .. q, 'completed', 1)
  local started = tonumber(redis.call('HGET', k, 'started_ms') or now)
  sample(P .. ':run_ms:' .. q, now - started)
  event('completed', id, q, nil)
  local keep = tonumber(redis.call('HGET', k, 'keep_ms') or '0')
  if keep > 0 then
    redis.call('HSET', k, 'state', 'completed', 'finished_ms', now, 'payload', '')
    redis.call('PEXPIRE', k, keep)
  else
    redis.call('DEL', k)
  end
  status = 'completed'
end
local n = tonumber(ARGV[4])
if n > 0 then
  local r = claim_many(cfg, worker, n)
  return {status, r[1], r[2], r[3]}
end
return {status, {}, 'none', 0}
