-- apply_order_event.lua: one event in the life of a (channel, order): RedisLedger.record_order,
-- .commit and .release all come here. Idempotent and order-independent:
--   * replaying an event changes nothing; no state moves backwards;
--   * a release for an order never seen leaves a tombstone, so the late order does not reserve;
--   * a commit/final/cancel_after_ship for an order never seen applies to on_hand directly;
--   * a marketplace order is always recorded, even when stock is short (then it is oversold).
--
-- KEYS and ARGV[1..5]: see _lib.lua. KEYS[12] is the order hash.
-- ARGV[6]  channel          ARGV[7]  order id
-- ARGV[8]  action: reserve | hold | commit | final | cancel_after_ship | release
-- ARGV[9]  the request's canonical lines JSON [[sku, qty], ...] (stored as the order's req,
--          never decoded) or "" when the event carries none
-- ARGV[10] marketplace status text ("" if none)
-- ARGV[11] event id: makes a partial release idempotent ("" = not partial)
-- ARGV[12] ms the event was received by the engine ("" = now): the dirty marks' time
-- ARGV[13] "1": a commit of an expired hold takes its stock again if it can (RedisLedger.commit,
--          the storefront's checkout); "" (marketplace events): an expired hold never moves
-- ARGV[14 ..] the same lines flat: sku, qty, sku, qty, ...
--
-- Returns {APPLIED, state, oversold_units, unknown_lines} | {NOOP, state} | {NOT_FOUND} |
--         {EXPIRED, sku, requested, available, ...} (ARGV[13] "1" only: nothing changed)
-- A known order is always worked on at the location stored with it, whatever ARGV[2] says.

local channel, order_id, action = ARGV[6], ARGV[7], ARGV[8]
local req, status, event_id = ARGV[9], ARGV[10], ARGV[11]
local received = tonumber(ARGV[12] or '')
local commit_expired = ARGV[13] == '1'
if received and received < NOW_MS then MARK_MS = received end

if not ORDER_ACTIONS[action] then return redis.error_reply('unknown action ' .. tostring(action)) end

local state = redis.call('HGET', K_ORDER, 'state')
if state then LOCATION = redis.call('HGET', K_ORDER, 'loc') end
if state and status ~= '' then redis.call('HSET', K_ORDER, 'status', status) end

-- First sight of the order.
if not state then
  local lines, unknown = {}, {}
  if req ~= '' then lines, unknown = expand(request_lines(14)) end
  if event_id ~= '' then
    -- A partial cancel of an order not seen yet: a tombstone would block the whole late order,
    -- so report it and let the caller retry once the order is known.
    return {NOT_FOUND}
  end
  if action == 'release' then
    -- A cancel seen before its order: a tombstone, no stock moves.
    new_order(channel, order_id, lines, {}, req, 'released', status)
    return {APPLIED, 'released', 0, 0}
  end
  if req == '' then return {NOT_FOUND} end
  local new_state, order, totals, after = 'reserved', nil, nil, nil
  if action == 'reserve' or action == 'hold' then
    order, totals, after = move_lines(lines, 0, 1, 'reserve', channel, order_id, action)
  else
    -- The goods already left (commit, final or cancelled after ship): on_hand drops directly.
    new_state = ({commit = 'committed', final = 'final',
                  cancel_after_ship = 'cancelled_after_ship'})[action]
    order, totals, after = move_lines(lines, -1, 0, 'commit', channel, order_id,
      action .. ' of an unseen order')
  end
  new_order(channel, order_id, lines, unknown, req, new_state, status)
  return {APPLIED, new_state, oversold_check(channel, order_id, order, totals, after), #unknown}
end

-- Partial release: only the given lines, once per event id.
if action == 'release' and event_id ~= '' then
  if state ~= 'reserved' then return {NOOP, state} end
  if redis.call('HEXISTS', K_ORDER, 'ev:' .. event_id) == 1 then return {NOOP, state} end
  redis.call('HSET', K_ORDER, 'ev:' .. event_id, NOW_MS)
  local to_release, kept, remaining = {}, {}, 0
  local asked = {}
  for _, line in ipairs(request_lines(14)) do asked[line[1]] = (asked[line[1]] or 0) + line[2] end
  for _, line in ipairs(stored_lines()) do
    local q = math.min(asked[line[1]] or 0, line[2])
    if q > 0 then
      to_release[#to_release + 1] = {line[1], q, line[3]}
      line[2] = line[2] - q
    end
    -- A line cancelled to zero is dropped, so later commits neither journal nor republish it.
    if line[2] > 0 then kept[#kept + 1] = line end
    remaining = remaining + line[2]
  end
  move_lines(to_release, 0, -1, 'release', channel, order_id, 'partial cancel')
  redis.call('HSET', K_ORDER, 'lines', cjson.encode(kept))
  if remaining == 0 then
    finish_order('released')
    drop_parked(channel, order_id)
    return {APPLIED, 'released', 0, 0}
  end
  redis.call('HSET', K_ORDER, 'updated_ms', NOW_MS)
  return {APPLIED, 'reserved', 0, 0}
end

-- Transitions of a known order. Anything not listed is a duplicate or a step backwards: NOOP.
local lines = stored_lines()
if state == 'reserved' then
  if action == 'commit' then
    move_lines(lines, -1, -1, 'commit', channel, order_id, action)
    finish_order('committed')
    return {APPLIED, 'committed', 0, 0}
  elseif action == 'final' or action == 'cancel_after_ship' then
    move_lines(lines, -1, -1, 'commit', channel, order_id, action)
    local new_state = action == 'final' and 'final' or 'cancelled_after_ship'
    finish_order(new_state)
    return {APPLIED, new_state, 0, 0}
  elseif action == 'release' then
    move_lines(lines, 0, -1, 'release', channel, order_id, 'cancel')
    finish_order('released')
    drop_parked(channel, order_id)
    return {APPLIED, 'released', 0, 0}
  end
elseif state == 'expired' and action == 'commit' and commit_expired then
  -- The checkout completed after the hold's TTL ran out and the sweep gave its units back.
  -- The goods are leaving, so take them again and commit, in this one call; if any line is
  -- no longer available nothing changes and the short lines are listed.
  local short = short_lines(lines, {})
  if #short > 0 then
    table.insert(short, 1, EXPIRED)
    return short
  end
  move_lines(lines, 0, 1, 'reserve', channel, order_id, 'expired hold taken again at commit')
  move_lines(lines, -1, -1, 'commit', channel, order_id, action)
  redis.call('PERSIST', K_ORDER)  -- set when it expired; a committed order is open
  finish_order('committed')
  return {APPLIED, 'committed', 0, 0}
elseif state == 'committed' then
  -- Goods already left: only the bookkeeping state moves on; stock comes back only as a return.
  if action == 'final' then
    finish_order('final')
    return {APPLIED, 'final', 0, 0}
  elseif action == 'cancel_after_ship' then
    finish_order('cancelled_after_ship')
    return {APPLIED, 'cancelled_after_ship', 0, 0}
  end
end
return {NOOP, state}
