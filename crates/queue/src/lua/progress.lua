-- ARGV: worker id, job id, progress (0-100).
local k = jk(ARGV[2])
if redis.call('HGET', k, 'worker') ~= ARGV[1] then return 0 end
event('progress', ARGV[2], redis.call('HGET', k, 'queue'), {'progress', ARGV[3]})
return 1
