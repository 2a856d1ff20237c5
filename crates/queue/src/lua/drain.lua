-- ARGV: queue. Removes its waiting and delayed jobs; returns how many.
local q = ARGV[1]
local n = 0
for _, key in ipairs({P .. ':wait:' .. q}) do
  for _, id in ipairs(redis.call('LRANGE', key, 0, -1)) do
    redis.call('DEL', jk(id)); n = n + 1
  end
  redis.call('DEL', key)
end
local dk = P .. ':delayed:' .. q
for _, id in ipairs(redis.call('ZRANGE', dk, 0, -1)) do
  redis.call('DEL', jk(id)); n = n + 1
end
redis.call('DEL', dk)
return n
