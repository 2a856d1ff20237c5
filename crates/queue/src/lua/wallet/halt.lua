-- Sets (ARGV[1] = '1') or lifts ('0') the kill-switch. Returns 1 when the wallet is loaded.
if redis.call('EXISTS', W) == 0 then return 0 end
redis.call('HSET', W, 'halted', ARGV[1])
return 1
