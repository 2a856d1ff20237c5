-- ARGV: worker id, job id, lease ms. Extends the lease of a job this worker still holds.
local k = jk(ARGV[2])
if redis.call('HGET', k, 'state') ~= 'active' or redis.call('HGET', k, 'worker') ~= ARGV[1] then
  return 0
end
redis.call('ZADD', P .. ':active', now_ms() + tonumber(ARGV[3]), ARGV[2])
return 1
