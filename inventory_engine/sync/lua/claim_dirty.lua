-- claim_dirty.lua: take the changed SKUs a channel may send now, oldest change first.
-- A SKU whose not-before time (Ozon's 30 s per item) has not come stays marked; the earliest
-- such time is returned so the caller knows when to come back. Claimed SKUs are unmarked and
-- held in flight under a lease: the caller re-marks any it could not deliver (ZADD LT keeps the
-- earliest change time) and then releases them; a caller that dies (a killed push worker) never
-- releases, and when the lease runs out the next claim marks those SKUs again first.
--
-- KEYS[1] inv:{a}:dirty:<channel>           zset sku -> ms of its first unpublished change
-- KEYS[2] inv:{a}:not_before:<channel>      hash sku -> ms before which it may not be sent
-- KEYS[3] inv:{a}:inflight:<channel>        zset sku -> ms its lease runs out
-- KEYS[4] inv:{a}:inflight_since:<channel>  hash sku -> its first-change ms
-- ARGV[1] now_ms   ARGV[2] most SKUs to claim   ARGV[3] most SKUs to look at   ARGV[4] lease ms
--
-- Returns {next_due_ms or -1, {sku, first_change_ms, not_before_ms, sku, ...}}
-- (not_before_ms 0 when none: a not-before later than the change means the limits held it).

local now, limit, scan = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local lease = tonumber(ARGV[4])

-- Leases that ran out: their sender died before it settled them. Mark them again.
local lost = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, scan)
for _, sku in ipairs(lost) do
  local since = redis.call('HGET', KEYS[4], sku) or now
  redis.call('ZADD', KEYS[1], 'LT', since, sku)
  redis.call('ZREM', KEYS[3], sku)
  redis.call('HDEL', KEYS[4], sku)
end

local members = redis.call('ZRANGE', KEYS[1], 0, scan - 1, 'WITHSCORES')
local claimed, count, next_due = {}, 0, -1
for i = 1, #members, 2 do
  local sku, since = members[i], members[i + 1]
  local not_before = tonumber(redis.call('HGET', KEYS[2], sku) or '0')
  if not_before <= now then
    if count < limit then
      claimed[#claimed + 1] = sku
      claimed[#claimed + 1] = since
      claimed[#claimed + 1] = not_before
      count = count + 1
      redis.call('ZREM', KEYS[1], sku)
      redis.call('ZADD', KEYS[3], now + lease, sku)
      redis.call('HSET', KEYS[4], sku, since)
    end
  elseif next_due < 0 or not_before < next_due then
    next_due = not_before
  end
end
return {next_due, claimed}
