-- Loads a wallet from the ledger unless it is loaded. ARGV: avail, ledger seq, halted,
-- journal seq to continue from. Returns 1 when loaded now.
if redis.call('EXISTS', W) == 1 then return 0 end
redis.call('DEL', H)
redis.call('HSET', W, 'avail', ARGV[1], 'lseq', ARGV[2], 'halted', ARGV[3], 'seq', ARGV[4])
return 1
