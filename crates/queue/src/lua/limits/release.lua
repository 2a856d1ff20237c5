-- Gives back a call's slots; with ARGV[2] = '1' (the call never reached the vendor), its
-- place in the daily counts too.
--
-- KEYS: [1] day global  [2] day tenant  [3] slots global  [4] slots tenant
-- ARGV: [1] lease id  [2] '1' to give back the daily counts
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if ARGV[2] == '1' then
  for i = 1, 2 do
    if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then
      redis.call('DECR', KEYS[i])
    end
  end
end
return 1
