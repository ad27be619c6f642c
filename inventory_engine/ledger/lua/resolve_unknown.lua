-- resolve_unknown.lua: apply an order's parked lines once the catalog knows their SKUs
-- (RedisLedger.resolve_unknown, behind `inventory-engine retry`).
--
-- KEYS and ARGV[1..5]: see _lib.lua. KEYS[12] is the order hash.
-- ARGV[6] channel   ARGV[7] order id   ARGV[8] JSON {parked sku: sku it maps to now, ...}
--
-- The resolved lines join the order and move the counters as the order's state requires:
-- reserved -> reserved (with the oversell check); committed / final / cancelled after ship ->
-- on hand drops (the goods left); released or expired -> nothing moves. Lines still unknown
-- stay parked.
--
-- Returns {APPLIED, state, oversold_units, lines still unknown} | {NOOP, state} | {NOT_FOUND}

local channel, order_id = ARGV[6], ARGV[7]
local mapping = cjson.decode(ARGV[8])

local state = redis.call('HGET', K_ORDER, 'state')
if not state then return {NOT_FOUND} end
LOCATION = redis.call('HGET', K_ORDER, 'loc')
local raw = redis.call('HGET', K_ORDER, 'unknown')
if not raw then return {NOOP, state} end

local resolved, still = {}, {}
for _, line in ipairs(cjson.decode(raw)) do
  local sku = mapping[line[1]]
  if sku and is_known(sku) then
    resolved[#resolved + 1] = {sku, line[2]}
  else
    still[#still + 1] = line
  end
end
if #resolved == 0 then return {NOOP, state} end

local known = expand(resolved)
local reason = 'unknown sku resolved'
local units = 0
if state == 'reserved' then
  local order, totals, after = move_lines(known, 0, 1, 'reserve', channel, order_id, reason)
  units = oversold_check(channel, order_id, order, totals, after)
elseif state == 'committed' or state == 'final' or state == 'cancelled_after_ship' then
  move_lines(known, -1, 0, 'commit', channel, order_id, reason)
end

local lines = stored_lines()
for _, line in ipairs(known) do lines[#lines + 1] = line end
redis.call('HSET', K_ORDER, 'lines', cjson.encode(lines), 'updated_ms', NOW_MS)
local parked_key = channel .. '|' .. order_id
if #still == 0 then
  redis.call('HDEL', K_ORDER, 'unknown')
  redis.call('HDEL', K_UNKNOWN, parked_key)
else
  redis.call('HSET', K_ORDER, 'unknown', cjson.encode(still))
  redis.call('HSET', K_UNKNOWN, parked_key,
    cjson.encode({lines = still, location = LOCATION, ms = NOW_MS}))
end
return {APPLIED, state, units, #still}
