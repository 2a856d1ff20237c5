-- Drops journal entries numbered up to ARGV[1] (written to the ledger). When nothing is
-- left to write and nothing is held, the wallet leaves Redis after ARGV[2] idle seconds.
-- Returns the entries left.
--
-- Entries are numbered one after another, so the head's number tells how many to drop
-- without decoding each; the last one dropped is checked, and a journal whose numbers are
-- not consecutive (never written so, but cheap to survive) is trimmed entry by entry.
local upto = tonumber(ARGV[1])
local function seq_at(i)
  local e = redis.call('LINDEX', J, i)
  if not e then return nil end
  return tonumber(cjson.decode(e).s)
end
local head = seq_at(0)
if head and head <= upto then
  local n = math.min(upto - head + 1, redis.call('LLEN', J))
  if seq_at(n - 1) == head + n - 1 then
    redis.call('LTRIM', J, n, -1)
  else
    while true do
      local s = seq_at(0)
      if not s or s > upto then break end
      redis.call('LPOP', J)
    end
  end
end
local left = redis.call('LLEN', J)
if left == 0 and redis.call('HLEN', H) == 0 and redis.call('EXISTS', W) == 1 then
  redis.call('EXPIRE', W, ARGV[2])
end
return left
