-- Shared by every wallet script. KEYS[1] is the wallet's hash, KEYS[2] its holds, KEYS[3]
-- its journal: all three carry the workspace's hash tag (`wallet:{<uuid>}`), so each script
-- is atomic on one cluster slot.
--
-- wallet hash: avail (millicents that may still be reserved), halted ("1": the kill-switch),
--              seq (the last journal entry's number), lseq (the ledger's last transfer when
--              the wallet was loaded: credits up to it are already counted)
-- holds hash:  hold id -> "<amount>:<deadline ms>:<kind>"
-- journal:     JSON entries, oldest first, until the syncer has written them to the ledger
local W, H, J = KEYS[1], KEYS[2], KEYS[3]

local function int(x) return string.format('%d', x) end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function avail() return tonumber(redis.call('HGET', W, 'avail')) end

-- Appends one journal entry under the next number.
local function journal(entry)
  local seq = redis.call('HINCRBY', W, 'seq', 1)
  entry.s = seq
  entry.m = now_ms()
  redis.call('RPUSH', J, cjson.encode(entry))
  redis.call('PERSIST', W)
  redis.call('PERSIST', H)
  return seq
end
