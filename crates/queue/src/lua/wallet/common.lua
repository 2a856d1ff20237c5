-- Shared by every wallet script. KEYS[1] is the wallet's hash, KEYS[2] its holds, KEYS[3]
-- its journal: all three carry the workspace's hash tag (`wallet:{<uuid>}`), so each script
-- is atomic on one cluster slot.
--
-- wallet hash: avail (millicents that may still be reserved), halted ("1": the kill-switch),
--              seq (the last journal entry's number), lseq (the ledger's last transfer when
--              the wallet was loaded: credits up to it are already counted)
-- holds hash:  hold id -> "<amount>:<deadline ms>:<kind>"
-- journal:     JSON entries, oldest first, until the syncer has written them to the ledger
--
-- The reserve and settle scripts are the gateway's hot path (each command a script runs
-- costs about a microsecond of Redis's one thread), so each reads the wallet's fields with
-- one HMGET and writes them with one HSET, reads the clock once, and PERSISTs only when
-- the journal starts anew (the wallet's idle TTL is only ever set while it is empty).
local W, H, J = KEYS[1], KEYS[2], KEYS[3]

local function int(x) return string.format('%d', x) end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function avail() return tonumber(redis.call('HGET', W, 'avail')) end

-- Appends one journal entry as number `seq` (the caller has stored it as the wallet's
-- `seq`), journaled at `now` (ms). Returns 1 when it is the journal's only entry: the
-- caller marks the wallet as having entries to sync (while the journal is not empty, the
-- wallet is marked, or its syncer is writing it and marks it again if entries are left
-- after its ack).
local function journal(entry, seq, now)
  entry.s = seq
  entry.m = now
  if redis.call('RPUSH', J, cjson.encode(entry)) == 1 then
    redis.call('PERSIST', W)
    return 1
  end
  return 0
end
