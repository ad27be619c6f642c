-- expire_due.lua: RedisLedger.expire_due. Releases storefront holds whose time is up.
-- The caller reads candidate order keys from the expiry zset (ZRANGEBYSCORE) and passes them
-- as KEYS, so no key is built here; each one is re-checked, so a stale candidate is harmless.
--
-- KEYS and ARGV[1..5]: see _lib.lua (KEYS[12] is an unused placeholder).
-- KEYS[13+N ..] order hashes of candidate reservations (each at its own stored location).
--
-- Returns {APPLIED, number_expired}

local expired = 0
for i = FIRST_EXTRA_KEY, #KEYS do
  K_ORDER = KEYS[i]
  local state = redis.call('HGET', K_ORDER, 'state')
  local exp = tonumber(redis.call('HGET', K_ORDER, 'exp') or '0')
  if state == 'reserved' and exp > 0 and exp <= NOW_MS then
    LOCATION = redis.call('HGET', K_ORDER, 'loc')
    local channel = redis.call('HGET', K_ORDER, 'channel')
    local order_id = redis.call('HGET', K_ORDER, 'order')
    move_lines(stored_lines(), 0, -1, 'release', channel, order_id, 'reservation expired')
    finish_order('expired')
    redis.call('ZREM', K_EXPIRY, K_ORDER)
    expired = expired + 1
  elseif state ~= 'reserved' then
    -- Committed or released since it was scheduled: just forget the schedule.
    redis.call('ZREM', K_EXPIRY, K_ORDER)
  end
end
return {APPLIED, expired}
