-- _push_lib.lua: shared by the push path's scripts (prepended to each by sync/scripts.py).
--
-- The push state of one channel, every time on the Redis server's own clock (TIME), so
-- workers on hosts whose clocks differ agree on leases, item windows and pauses:
--
-- KEYS[1] inv:{a}:dirty:<channel>        zset sku -> ms from which it may be sent (the delay
--                                        queue). The ledger adds a change with its own time
--                                        (NX), so a fresh mark is due at once; a SKU the item
--                                        window or another sender's flight holds is moved to
--                                        the ms it may go.
-- KEYS[2] inv:{a}:dirty_since:<channel>  hash sku -> "first_ms allowed_ms" for a SKU whose
--                                        score is not its first change: when the oldest
--                                        unpublished change happened, and from when the
--                                        marketplace's limits allowed sending it.
-- KEYS[3] inv:{a}:inflight:<channel>     zset sku -> ms its lease runs out
-- KEYS[4] inv:{a}:claims:<channel>       hash sku -> "token first_ms allowed_ms prev_nb tainted"
-- KEYS[5] inv:{a}:not_before:<channel>   hash sku -> ms before which it may not be sent
-- KEYS[6] inv:{a}:accepted:<channel>     hash sku -> the value the channel last accepted

-- The Redis server's clock in ms, plus inv:{a}:clock_offset (absent in production: tests and
-- simulations move it to jump ahead in time for every process at once).
local function server_ms(offset_key)
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  return ms + tonumber(redis.call('GET', offset_key) or '0')
end

local function split(text)
  local out = {}
  for word in string.gmatch(text, '%S+') do out[#out + 1] = word end
  return out
end

-- The first-change and allowed times of a marked SKU (nil when it is not marked).
local function mark_times(sku)
  local score = redis.call('ZSCORE', KEYS[1], sku)
  if not score then return nil end
  local meta = redis.call('HGET', KEYS[2], sku)
  if meta then
    local parts = split(meta)
    return tonumber(parts[1]), tonumber(parts[2]), tonumber(score)
  end
  return tonumber(score), tonumber(score), tonumber(score)
end

-- Write a SKU's mark: due at `due`; its first change and allowed times kept beside it when
-- they differ from the due time.
local function write_mark(sku, first, allowed, due)
  redis.call('ZADD', KEYS[1], due, sku)
  if first == due and allowed == due then
    redis.call('HDEL', KEYS[2], sku)
  else
    redis.call('HSET', KEYS[2], sku, first .. ' ' .. allowed)
  end
end

-- Keep a SKU marked, due at `due` or later. A mark already there (a change made meanwhile)
-- keeps the earlier first change and the later due time.
local function remark(sku, first, allowed, due)
  local old_first, old_allowed, old_due = mark_times(sku)
  if old_first then
    if old_first < first then first, allowed = old_first, old_allowed end
    if old_due > due then due = old_due end
  end
  write_mark(sku, first, allowed, due)
end

-- Move a marked SKU's due time to `due` (earlier or later), keeping its first change.
local function move_mark(sku, due, allowed_floor)
  local first, allowed = mark_times(sku)
  if not first then return end
  if allowed_floor and allowed_floor > allowed then allowed = allowed_floor end
  write_mark(sku, first, allowed, due)
end

-- A claim whose lease ran out: gone, and what it sent may have landed, so the value the
-- channel last accepted is no longer known.
local function forget_lost_claim(sku)
  redis.call('ZREM', KEYS[3], sku)
  redis.call('HDEL', KEYS[4], sku)
  redis.call('HDEL', KEYS[6], sku)
end
