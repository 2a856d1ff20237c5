-- Adds a ledger credit (a deposit, a refund) that the ledger wrote as transfer number
-- ARGV[2]; one the wallet was loaded with already is not added again. ARGV[3] = '1' lifts
-- the kill-switch. Returns the new avail, or -1 when not loaded (the next load counts it).
if redis.call('EXISTS', W) == 0 then return -1 end
if tonumber(ARGV[2]) > tonumber(redis.call('HGET', W, 'lseq') or '0') then
  redis.call('HINCRBY', W, 'avail', ARGV[1])
end
if ARGV[3] == '1' then redis.call('HSET', W, 'halted', '0') end
return int(avail())
