-- ARGV: config JSON, worker id, job id, claim next n (0 for none).
-- Completes a job this worker holds, then claims up to n more in the same round trip.
local cfg = cjson.decode(ARGV[1])
local worker, id = ARGV[2], ARGV[3]
local k = jk(id)
local f = redis.call('HMGET', k, 'state', 'worker', 'queue', 'started_ms', 'keep_ms', 'seq')
local status = 'lost'
if f[1] == 'active' and f[2] == worker then
  local now = now_ms()
  local q = f[3]
  redis.call('ZREM', P .. ':active', id)
  redis.call('HINCRBY', P .. ':inflight', q, -1)
  redis.call('HINCRBY', P .. ':stats:' .. q, 'completed', 1)
  sample(P .. ':run_ms:' .. q, tonumber(f[6] or '0'), now - tonumber(f[4] or now))
  event('completed', id, q, nil)
  local keep = tonumber(f[5] or '0')
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
