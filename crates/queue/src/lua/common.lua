-- Shared by every queue script. KEYS[1] is the key prefix, which carries the hash tag of the
-- governed set (e.g. "genesis:{gov:fleet}"): every key below derives from it, so one script
-- touches one cluster slot.
local P = KEYS[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function jk(id) return P .. ':job:' .. id end

-- Lua 5.1 prints numbers with 14 significant digits; microsecond timestamps need 16.
local function int(x) return string.format('%d', x) end

local function event(kind, id, queue, extra)
  local args = {P .. ':events', 'MAXLEN', '~', '100000', '*', 'type', kind, 'job', id, 'queue', queue}
  if extra then
    for i = 1, #extra do args[#args + 1] = extra[i] end
  end
  redis.call('XADD', unpack(args))
end

-- Latency samples: one job in 16 (by enqueue order), the last 1,000 kept.
local function sample(list, seq, value)
  if seq % 16 ~= 0 then return end
  redis.call('LPUSH', list, value)
  redis.call('LTRIM', list, 0, 999)
end

-- Moves due delayed jobs (first attempts scheduled later, and retries after backoff) to the
-- tail of their queue.
local function promote(cfg, now)
  for _, q in ipairs(cfg.queues) do
    local dk = P .. ':delayed:' .. q.name
    local due = redis.call('ZRANGEBYSCORE', dk, '-inf', now, 'LIMIT', 0, 1000)
    for _, id in ipairs(due) do
      redis.call('ZREM', dk, id)
      redis.call('HSET', jk(id), 'state', 'waiting')
      redis.call('RPUSH', P .. ':wait:' .. q.name, id)
    end
  end
end

local function to_dead(id, queue, reason, now)
  redis.call('HSET', jk(id), 'state', 'dead', 'finished_ms', now, 'last_error', reason)
  redis.call('LPUSH', P .. ':dead:' .. queue, id)
  redis.call('HINCRBY', P .. ':stats:' .. queue, 'dead', 1)
  event('dead', id, queue, {'error', reason})
end

-- Jobs whose lease expired (their worker died): back to the head of their queue, or to the
-- dead letters after too many stalls.
local function reap(cfg, now)
  local expired = redis.call('ZRANGEBYSCORE', P .. ':active', '-inf', now, 'LIMIT', 0, 100)
  for _, id in ipairs(expired) do
    redis.call('ZREM', P .. ':active', id)
    local q = redis.call('HGET', jk(id), 'queue')
    if q then
      redis.call('HINCRBY', P .. ':inflight', q, -1)
      local stalls = redis.call('HINCRBY', jk(id), 'stalls', 1)
      redis.call('HINCRBY', P .. ':stats:' .. q, 'stalled', 1)
      if stalls > cfg.max_stalls then
        to_dead(id, q, 'stalled ' .. stalls .. ' times (worker lost)', now)
      else
        redis.call('HSET', jk(id), 'state', 'waiting', 'worker', '')
        redis.call('LPUSH', P .. ':wait:' .. q, id)
        event('stalled', id, q, nil)
      end
    end
  end
end

-- One claim: returns {id, queue, payload, attempt} or nil plus a reason and a wait hint.
local function claim_one(cfg, worker, now, now_micro)
  if redis.call('ZCARD', P .. ':active') >= cfg.max_concurrency then
    return nil, 'concurrency', 0
  end
  -- The hard limit: an exact sliding log of starts, so no window holds more than rate_max.
  local starts = P .. ':starts'
  local interval, tat = 0, 0
  if cfg.rate_limited then
  redis.call('ZREMRANGEBYSCORE', starts, '-inf', int(now_micro - cfg.window_us))
  if redis.call('ZCARD', starts) >= cfg.rate_max then
    local oldest = redis.call('ZRANGE', starts, 0, 0, 'WITHSCORES')
    local wait = math.ceil((tonumber(oldest[2]) + cfg.window_us - now_micro) / 1000)
    return nil, 'rate', wait
  end
  -- The pace: GCRA spaces starts window/rate_max apart (after a small burst), so they are
  -- spread over the window instead of bunched at its start, and no observer sees a burst.
  interval = cfg.window_us / cfg.pace
  tat = tonumber(redis.call('GET', P .. ':tat') or '0')
  if tat < now_micro then tat = now_micro end
  local ahead = tat - now_micro
  if ahead > interval * cfg.burst then
    return nil, 'rate', math.ceil((ahead - interval * cfg.burst) / 1000)
  end
  end
  local best, best_pri, best_seq = nil, nil, nil
  for _, q in ipairs(cfg.queues) do
    if best_pri ~= nil and q.priority > best_pri then break end
    if redis.call('SISMEMBER', P .. ':paused', q.name) == 0 then
      local inflight = tonumber(redis.call('HGET', P .. ':inflight', q.name) or '0')
      if inflight < q.concurrency then
        local head = redis.call('LINDEX', P .. ':wait:' .. q.name, 0)
        if head then
          local seq = tonumber(redis.call('HGET', jk(head), 'seq') or '0')
          if best == nil or seq < best_seq then
            best, best_pri, best_seq = q.name, q.priority, seq
          end
        end
      end
    end
  end
  if best == nil then return nil, 'empty', 0 end
  local id = redis.call('LPOP', P .. ':wait:' .. best)
  local k = jk(id)
  local attempt = redis.call('HINCRBY', k, 'attempts', 1)
  redis.call('HSET', k, 'state', 'active', 'worker', worker, 'started_ms', now)
  redis.call('ZADD', P .. ':active', now + cfg.lease_ms, id)
  redis.call('HINCRBY', P .. ':inflight', best, 1)
  if cfg.rate_limited then
    redis.call('ZADD', starts, int(now_micro), id .. ':' .. attempt)
    redis.call('SET', P .. ':tat', int(tat + interval))
  end
  local f = redis.call('HMGET', k, 'payload', 'available_ms')
  sample(P .. ':wait_ms:' .. best, best_seq, now - tonumber(f[2] or now))
  return {id, best, f[1], attempt}, nil, 0
end

-- Promotion and reaping run at most every 25 ms, not on every claim: they are scans, and
-- the hot path should be a handful of O(1) and O(log n) commands.
local function maintain(cfg, now)
  local due = tonumber(redis.call('GET', P .. ':maint') or '0')
  if now < due then return end
  redis.call('SET', P .. ':maint', int(now + 25))
  promote(cfg, now)
  reap(cfg, now)
end

-- Up to n claims; the reason and wait hint of the first refusal end the batch.
local function claim_many(cfg, worker, n)
  local now = now_ms()
  local micro = now_us()
  maintain(cfg, now)
  local out = {}
  local reason, wait = 'empty', 0
  for _ = 1, n do
    local job, r, w = claim_one(cfg, worker, now, micro)
    if job == nil then
      reason, wait = r, w
      break
    end
    out[#out + 1] = job
  end
  return {out, reason, wait}
end
