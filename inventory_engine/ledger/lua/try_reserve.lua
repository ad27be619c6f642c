-- try_reserve.lua: RedisLedger.try_reserve, the storefront's all-or-nothing checkout hold.
-- If any component is short nothing changes and every short line is listed. A repeated call
-- with the same id and lines returns the first answer; with other lines it is a conflict.
--
-- KEYS and ARGV[1..5]: see _lib.lua. KEYS[12] is the reservation's order hash.
-- ARGV[6] channel   ARGV[7] reservation id   ARGV[8] request lines JSON [[sku, qty], ...]
-- ARGV[9] expiry ms ("" = held until committed or released)
-- ARGV[10 ..] the same lines flat: sku, qty, sku, qty, ...
--
-- Returns {APPLIED, 'reserved', expiry_ms} | {NOOP, state, expiry_ms} | {CONFLICT, state} |
--         {INSUFFICIENT, sku, requested, available, ...}

local channel, reservation_id, req, expires = ARGV[6], ARGV[7], ARGV[8], ARGV[9]

local state = redis.call('HGET', K_ORDER, 'state')
if state then
  if redis.call('HGET', K_ORDER, 'req') ~= req then return {CONFLICT, state} end
  return {NOOP, state, int_or_zero(redis.call('HGET', K_ORDER, 'exp'))}
end

local lines, unknown = expand(request_lines(10))
local short = short_lines(lines, unknown)
if #short > 0 then
  table.insert(short, 1, INSUFFICIENT)
  return short
end

new_order(channel, reservation_id, lines, {}, req, 'reserved', '')
move_lines(lines, 0, 1, 'reserve', channel, reservation_id, 'storefront checkout')
if expires ~= '' then
  redis.call('HSET', K_ORDER, 'exp', expires)
  redis.call('ZADD', K_EXPIRY, expires, K_ORDER)
end
return {APPLIED, 'reserved', int_or_zero(redis.call('HGET', K_ORDER, 'exp'))}
