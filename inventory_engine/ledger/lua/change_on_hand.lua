-- change_on_hand.lua: RedisLedger.set_on_hand / adjust_on_hand / import_on_hand: stock counts and
-- goods received. All SKUs of one call change together or not at all.
--
-- KEYS and ARGV[1..5]: see _lib.lua (KEYS[12] is an unused placeholder).
-- ARGV[6] mode: set | add   ARGV[7] reason   ARGV[8] source (who: cli, api, import, ...)
-- ARGV[9] largest allowed level   ARGV[10 ..] pairs: sku, value (absolute for set, delta for add)
--
-- Returns {APPLIED, number_changed} | {OUT_OF_RANGE, sku, on_hand_now, wanted} | {IS_BUNDLE, sku}

local mode, reason, source, max_level = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])

local plan = {}
for i = 10, #ARGV, 2 do
  local sku, value = ARGV[i], tonumber(ARGV[i + 1])
  if redis.call('HEXISTS', K_BUNDLES, sku) == 1 then return {IS_BUNDLE, sku} end
  local now = on_hand_of(sku)
  local wanted = value
  if mode == 'add' then wanted = now + value end
  -- Receiving goods may still leave a count below zero (after an oversell shipped); only a
  -- removal may not take it there, and nothing may pass the ceiling.
  if wanted > max_level or (wanted < 0 and (mode == 'set' or value < 0)) then
    return {OUT_OF_RANGE, sku, now, wanted}
  end
  plan[#plan + 1] = {sku, now, wanted}
end

redis.call('SADD', K_LOCATIONS, LOCATION)
local changed = 0
for _, item in ipairs(plan) do
  local sku, now, wanted = item[1], item[2], item[3]
  if redis.call('HEXISTS', K_ON_HAND, field(sku)) == 0 or wanted ~= now then
    -- HSET first so that a count of 0 still makes the SKU known at this location.
    redis.call('HSET', K_ON_HAND, field(sku), now)
    change(sku, wanted - now, 0, mode == 'set' and 'set_on_hand' or 'adjust_on_hand',
      source, '', reason)
    changed = changed + 1
  end
end
return {APPLIED, changed}
