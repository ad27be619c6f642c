-- dismiss_unknown.lua: an operator gives up on an order's parked unknown-SKU lines
-- (RedisLedger.dismiss_unknown, behind `inventory-engine order dismiss`): a sample never
-- stocked, an order whose record expired before its item was catalogued...
--
-- KEYS and ARGV[1..5]: see _lib.lua. KEYS[12] is the order hash (it may have expired).
-- ARGV[6] channel   ARGV[7] order id   ARGV[8] reason (who and why)
--
-- The order leaves the unknown-SKU list; each parked line is journaled (op dismiss_unknown, the
-- reason, the time) with its counters unchanged: nothing moves, only nobody waits any more.
-- The order hash, if still there, keeps its `unknown` lines and records `dismissed`.
--
-- Returns {APPLIED, item, quantity, ...} (the lines dismissed) | {NOT_FOUND} (nothing parked)

local channel, order_id, reason = ARGV[6], ARGV[7], ARGV[8]
local parked_key = channel .. '|' .. order_id

local raw = redis.call('HGET', K_UNKNOWN, parked_key)
if not raw then return {NOT_FOUND} end
local parked = cjson.decode(raw)
if type(parked.location) == 'string' and parked.location ~= '' then
  LOCATION = parked.location
end

local reply = {APPLIED}
for _, line in ipairs(parked.lines or {}) do
  local oh, rs = on_hand_of(line[1]), reserved_of(line[1])
  journal('dismiss_unknown', channel, order_id, line[1], oh, oh, rs, rs, reason)
  reply[#reply + 1] = line[1]
  reply[#reply + 1] = line[2]
end
redis.call('HDEL', K_UNKNOWN, parked_key)
if redis.call('EXISTS', K_ORDER) == 1 then
  redis.call('HSET', K_ORDER, 'dismissed', cjson.encode({reason = reason, ms = NOW_MS}))
end
return reply
