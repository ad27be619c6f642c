-- try_reserve.lua: RedisLedger.try_reserve, the storefront's all-or-nothing checkout hold.
-- If any component is short nothing changes and every short line is listed. A repeated call
-- with the same id and lines returns the first answer; with other lines it is a conflict.
--
-- KEYS and ARGV[1..5]: see _lib.lua. KEYS[12] is the reservation's order hash.
-- ARGV[6] channel   ARGV[7] reservation id   ARGV[8] request lines JSON [[sku, qty], ...]
-- ARGV[9] expiry ms ("" = held until committed or released)
--
-- Returns {APPLIED, 'reserved', expiry_ms} | {NOOP, state, expiry_ms} | {CONFLICT, state} |
--         {INSUFFICIENT, sku, requested, available, ...}

local channel, reservation_id, req, expires = ARGV[6], ARGV[7], ARGV[8], ARGV[9]

local state = redis.call('HGET', K_ORDER, 'state')
if state then
  if redis.call('HGET', K_ORDER, 'req') ~= req then return {CONFLICT, state} end
  return {NOOP, state, int_or_zero(redis.call('HGET', K_ORDER, 'exp'))}
end

local request_lines = cjson.decode(req)
local lines, unknown = expand(request_lines)
local order, totals = demand_of(lines)
local available = {}
for _, sku in ipairs(order) do
  available[sku] = on_hand_of(sku) - reserved_of(sku)
end

-- Every requested line is checked against the combined demand on its components, so two lines
-- sharing a component cannot each pass alone and together oversell.
local short = {}
for _, line in ipairs(unknown) do
  short[#short + 1] = line[1]; short[#short + 1] = line[2]; short[#short + 1] = 0
end
for _, line in ipairs(lines) do
  local line_short, line_available = false, nil
  for _, part in ipairs(line[3]) do
    local sku, per = part[1], part[2]
    if totals[sku] > available[sku] then line_short = true end
    local units = math.floor(math.max(available[sku], 0) / per)
    if line_available == nil or units < line_available then line_available = units end
  end
  if line_short then
    short[#short + 1] = line[1]; short[#short + 1] = line[2]; short[#short + 1] = line_available
  end
end
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
