-- Drops journal entries numbered up to ARGV[1] (written to the ledger). When nothing is
-- left to write and nothing is held, the wallet leaves Redis after ARGV[2] idle seconds.
-- Returns the entries left.
local upto = tonumber(ARGV[1])
while true do
  local head = redis.call('LINDEX', J, 0)
  if not head then break end
  if tonumber(cjson.decode(head).s) > upto then break end
  redis.call('LPOP', J)
end
local left = redis.call('LLEN', J)
if left == 0 and redis.call('HLEN', H) == 0 and redis.call('EXISTS', W) == 1 then
  redis.call('EXPIRE', W, ARGV[2])
end
return left
