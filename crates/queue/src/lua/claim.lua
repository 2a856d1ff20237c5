-- ARGV: config JSON, worker id, how many.
local cfg = cjson.decode(ARGV[1])
return claim_many(cfg, ARGV[2], tonumber(ARGV[3]))
