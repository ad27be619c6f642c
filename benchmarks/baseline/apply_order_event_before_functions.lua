-- Frozen for benchmarks/ledger.py (issue 15 §3, "before"): apply_order_event as the ledger ran
-- it before it became a Redis Functions library (commit 4079795), i.e. exactly what
-- inventory_engine.ledger.scripts.script_source("apply_order_event") returned at commit 83f58a0:
--
--   git show 83f58a0:inventory_engine/ledger/lua/_lib.lua, a newline, then
--   git show 83f58a0:inventory_engine/ledger/lua/apply_order_event.lua
--
-- It ran through EVALSHA with _lib.lua prepended, so its 13 helper closures were created again
-- at every call, and it decoded the request lines from the JSON in ARGV[9]. The ledger's ARGV
-- is backward compatible with it: ARGV[1..13] mean the same, ARGV[9] is the same canonical
-- JSON, and the flat lines the ledger now adds at ARGV[14..] are never read here.
--
-- benchmarks/ledger.py drops these header lines (everything up to and including the
-- "-- end of header" line below) and runs the rest; SHA1 of that rest (the script's own SHA1
-- at 83f58a0): df4b11bd1458f1fab3269306af389868df46aa7b. Do not edit below the header.
-- end of header
-- _lib.lua: helpers shared by every ledger script. ledger/scripts.py prepends this file to each
-- operation's file before registering it, so every script has the same KEYS/ARGV prologue:
--
-- KEYS[1]  inv:{a}:on_hand               hash "<location>|<sku>" -> units on hand
-- KEYS[2]  inv:{a}:reserved              hash "<location>|<sku>" -> units reserved
-- KEYS[3]  inv:{a}:bundles               hash bundle sku -> "A:2;B:1"
-- KEYS[4]  inv:{a}:bundle_parents        hash component sku -> "B1;B2"
-- KEYS[5]  inv:{a}:catalog               hash sku -> catalog JSON (a SKU listed there is known)
-- KEYS[6]  inv:{a}:journal               stream, the audit journal
-- KEYS[7]  inv:{a}:counters              hash oversold_orders / oversold_units / unknown_sku_orders
-- KEYS[8]  inv:{a}:locations             set of locations
-- KEYS[9]  inv:{a}:oversold              hash "<channel>|<order>|<sku>" -> JSON
-- KEYS[10] inv:{a}:unknown_skus          hash "<channel>|<order>" -> JSON
-- KEYS[11] inv:{a}:expiry                zset order key -> expiry ms
-- KEYS[12] inv:{a}:order:<channel>:<id>  the order hash (scripts without one pass a placeholder)
-- KEYS[13 .. 12+N] inv:{a}:dirty:<channel> for each of the N published channels
-- KEYS[13+N ..]   operation-specific extra keys
--
-- ARGV[1] now_ms   ARGV[2] location (of new orders and counts; a known order keeps its own)
-- ARGV[3] N (number of dirty keys)
-- ARGV[4] journal max length (approximate)   ARGV[5] retention ms of finished orders
-- ARGV[6 ..] operation-specific
--
-- Order hash fields: state, loc, channel, lines (JSON [[sku, qty, [[component, per_unit], ...]], ...]),
-- req (the request's canonical lines JSON), unknown (JSON of parked lines), status (last
-- marketplace status seen), exp (expiry ms), created_ms, updated_ms, ev:<event id> (applied
-- partial events), dismissed (JSON reason and ms: its parked lines were dismissed).
--
-- Status codes returned by every script (decoded in ledger/results.py only):
local APPLIED, NOOP, NOT_FOUND, INSUFFICIENT, CONFLICT, OUT_OF_RANGE, IS_BUNDLE = 1, 2, 3, 4, 5, 6, 7
local EXPIRED = 8

local K_ON_HAND, K_RESERVED, K_BUNDLES, K_PARENTS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_CATALOG, K_JOURNAL, K_COUNTERS, K_LOCATIONS = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local K_OVERSOLD, K_UNKNOWN, K_EXPIRY, K_ORDER = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
local NOW_MS = tonumber(ARGV[1])
-- Not constant: a script working on a known order switches to the location stored with it.
local LOCATION = ARGV[2]
local N_DIRTY = tonumber(ARGV[3])
local JOURNAL_MAXLEN = ARGV[4]
local RETENTION_MS = tonumber(ARGV[5])
-- When the change first became known (an event's receipt); scripts may move it earlier. Dirty
-- marks carry it, so propagation is measured from the event, not from the worker applying it.
local MARK_MS = NOW_MS
local FIRST_DIRTY = 13
local FIRST_EXTRA_KEY = FIRST_DIRTY + N_DIRTY

-- HGET answers false for a missing field.
local function int_or_zero(value)
  if value then return tonumber(value) end
  return 0
end

-- The counter field of a SKU at the current location.
local function field(sku)
  return LOCATION .. '|' .. sku
end

local function on_hand_of(sku)
  return int_or_zero(redis.call('HGET', K_ON_HAND, field(sku)))
end

local function reserved_of(sku)
  return int_or_zero(redis.call('HGET', K_RESERVED, field(sku)))
end

local function split(text, sep)
  local out = {}
  for piece in string.gmatch(text, '[^' .. sep .. ']+') do out[#out + 1] = piece end
  return out
end

local function journal(op, channel, order_id, sku, oh0, oh1, rs0, rs1, reason)
  redis.call('XADD', K_JOURNAL, 'MAXLEN', '~', JOURNAL_MAXLEN, '*',
    'ms', NOW_MS, 'op', op, 'channel', channel, 'order', order_id, 'sku', sku,
    'location', LOCATION, 'on_hand_before', oh0, 'on_hand_after', oh1,
    'reserved_before', rs0, 'reserved_after', rs1, 'reason', reason)
end

-- Mark a SKU, and every bundle built from it, as changed for each published channel. NX keeps
-- the time of the first unpublished change, which is what propagation latency is measured from.
local function mark_dirty(sku)
  if N_DIRTY == 0 then return end
  local parents = redis.call('HGET', K_PARENTS, sku)
  for i = FIRST_DIRTY, FIRST_EXTRA_KEY - 1 do
    redis.call('ZADD', KEYS[i], 'NX', MARK_MS, sku)
    if parents then
      for _, parent in ipairs(split(parents, ';')) do
        redis.call('ZADD', KEYS[i], 'NX', MARK_MS, parent)
      end
    end
  end
end

-- Move one SKU's counters by the given deltas, journal it and mark it dirty.
-- Returns on_hand and reserved after the change.
local function change(sku, d_on_hand, d_reserved, op, channel, order_id, reason)
  local oh0, rs0 = on_hand_of(sku), reserved_of(sku)
  local oh1, rs1 = oh0 + d_on_hand, rs0 + d_reserved
  if d_on_hand ~= 0 then redis.call('HSET', K_ON_HAND, field(sku), oh1) end
  if d_reserved ~= 0 then redis.call('HSET', K_RESERVED, field(sku), rs1) end
  journal(op, channel, order_id, sku, oh0, oh1, rs0, rs1, reason)
  mark_dirty(sku)
  return oh1, rs1
end

local function is_known(sku)
  return redis.call('HEXISTS', K_ON_HAND, field(sku)) == 1
    or redis.call('HEXISTS', K_CATALOG, sku) == 1
    or redis.call('HEXISTS', K_BUNDLES, sku) == 1
end

-- The components of one unit of a SKU: its bundle recipe, or the SKU itself.
local function parts_of(sku)
  local recipe = redis.call('HGET', K_BUNDLES, sku)
  if not recipe then return {{sku, 1}} end
  local parts = {}
  for _, item in ipairs(split(recipe, ';')) do
    local colon = string.find(item, ':', 1, true)
    parts[#parts + 1] = {string.sub(item, 1, colon - 1), tonumber(string.sub(item, colon + 1))}
  end
  return parts
end

-- Expand request lines [[sku, qty], ...] into stored lines [[sku, qty, parts], ...], splitting
-- off lines whose SKU the ledger does not know.
local function expand(request_lines)
  local known, unknown = {}, {}
  for _, line in ipairs(request_lines) do
    if is_known(line[1]) then
      known[#known + 1] = {line[1], line[2], parts_of(line[1])}
    else
      unknown[#unknown + 1] = {line[1], line[2]}
    end
  end
  return known, unknown
end

-- Units per component for stored lines, in first-seen order (deterministic journal order).
-- Lines fully cancelled by a partial release (quantity 0) demand nothing.
local function demand_of(lines)
  local order, totals = {}, {}
  for _, line in ipairs(lines) do
    for _, part in ipairs(line[2] > 0 and line[3] or {}) do
      local sku = part[1]
      if totals[sku] == nil then
        order[#order + 1] = sku
        totals[sku] = 0
      end
      totals[sku] = totals[sku] + line[2] * part[2]
    end
  end
  return order, totals
end

-- The lines that cannot all be had now at LOCATION: {sku, requested, available, ...} (flat),
-- empty when every line can. Every line is checked against the combined demand on its
-- components, so two lines sharing a component cannot each pass alone and together oversell;
-- ``unknown`` lines (SKUs the ledger does not know) are short with 0 available.
local function short_lines(lines, unknown)
  local order, totals = demand_of(lines)
  local available = {}
  for _, sku in ipairs(order) do
    available[sku] = on_hand_of(sku) - reserved_of(sku)
  end
  local short = {}
  for _, line in ipairs(unknown) do
    short[#short + 1] = line[1]; short[#short + 1] = line[2]; short[#short + 1] = 0
  end
  for _, line in ipairs(lines) do
    if line[2] > 0 then
      local line_short, line_available = false, nil
      for _, part in ipairs(line[3]) do
        local sku, per = part[1], part[2]
        if totals[sku] > available[sku] then line_short = true end
        local units = math.floor(math.max(available[sku], 0) / per)
        if line_available == nil or units < line_available then line_available = units end
      end
      if line_short then
        short[#short + 1] = line[1]; short[#short + 1] = line[2]
        short[#short + 1] = line_available
      end
    end
  end
  return short
end

-- Apply the same signed multiple of the demand to on_hand and/or reserved of every component.
-- Returns the components in order, their demand, and their {on_hand, reserved} afterwards.
local function move_lines(lines, on_hand_sign, reserved_sign, op, channel, order_id, reason)
  local order, totals = demand_of(lines)
  local after = {}
  for _, sku in ipairs(order) do
    local q = totals[sku]
    local oh, rs = change(sku, on_hand_sign * q, reserved_sign * q, op, channel, order_id, reason)
    after[sku] = {oh, rs}
  end
  return order, totals, after
end

-- Finished orders (and tombstones) expire after the retention time; open ones never have a
-- TTL, since states never move backwards from finished to open.
local function expire_if_finished(state)
  if state ~= 'reserved' and state ~= 'committed' then
    redis.call('PEXPIRE', K_ORDER, RETENTION_MS)
  end
end

local function finish_order(state)
  redis.call('HSET', K_ORDER, 'state', state, 'updated_ms', NOW_MS)
  expire_if_finished(state)
end

-- Write a first-seen order in one HSET, with its final state for this event.
local function new_order(channel, order_id, lines, unknown, req, state, status)
  redis.call('HSET', K_ORDER, 'state', state, 'channel', channel, 'order', order_id,
    'loc', LOCATION, 'lines', cjson.encode(lines), 'req', req, 'status', status,
    'created_ms', NOW_MS, 'updated_ms', NOW_MS)
  expire_if_finished(state)
  if #unknown > 0 then
    redis.call('HSET', K_ORDER, 'unknown', cjson.encode(unknown))
    redis.call('HSET', K_UNKNOWN, channel .. '|' .. order_id,
      cjson.encode({lines = unknown, location = LOCATION, ms = NOW_MS}))
    redis.call('HINCRBY', K_COUNTERS, 'unknown_sku_orders', 1)
  end
end

local function stored_lines()
  local raw = redis.call('HGET', K_ORDER, 'lines')
  if not raw then return {} end
  return cjson.decode(raw)
end

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
-- ARGV[9]  request lines JSON [[sku, qty], ...] or "" when the event carries none
-- ARGV[10] marketplace status text ("" if none)
-- ARGV[11] event id: makes a partial release idempotent ("" = not partial)
-- ARGV[12] ms the event was received by the engine ("" = now): the dirty marks' time
-- ARGV[13] "1": a commit of an expired hold takes its stock again if it can (RedisLedger.commit,
--          the storefront's checkout); "" (marketplace events): an expired hold never moves
--
-- Returns {APPLIED, state, oversold_units, unknown_lines} | {NOOP, state} | {NOT_FOUND} |
--         {EXPIRED, sku, requested, available, ...} (ARGV[13] "1" only: nothing changed)
-- A known order is always worked on at the location stored with it, whatever ARGV[2] says.

local channel, order_id, action = ARGV[6], ARGV[7], ARGV[8]
local req, status, event_id = ARGV[9], ARGV[10], ARGV[11]
local received = tonumber(ARGV[12] or '')
local commit_expired = ARGV[13] == '1'
if received and received < NOW_MS then MARK_MS = received end

local ACTIONS = {reserve = true, hold = true, commit = true, final = true,
                 cancel_after_ship = true, release = true}
if not ACTIONS[action] then return redis.error_reply('unknown action ' .. tostring(action)) end

local state = redis.call('HGET', K_ORDER, 'state')
if state then LOCATION = redis.call('HGET', K_ORDER, 'loc') end
if state and status ~= '' then redis.call('HSET', K_ORDER, 'status', status) end

-- A cancelled order's parked unknown-SKU lines need nobody any more: nothing moved for them and
-- nothing ever will, so they leave the list that waits for a person (`retry`, the gauge and its
-- alert). The order keeps its own `unknown` field for `order show`.
local function drop_parked()
  redis.call('HDEL', K_UNKNOWN, channel .. '|' .. order_id)
end

-- Oversell check on the counters move_lines left behind (no second read).
local function oversold_check(order, totals, after)
  local units = 0
  for _, sku in ipairs(order) do
    local oh, rs = after[sku][1], after[sku][2]
    local available = oh - rs
    if available < 0 then
      local short = math.min(totals[sku], -available)
      units = units + short
      redis.call('HSET', K_OVERSOLD, channel .. '|' .. order_id .. '|' .. sku,
        cjson.encode({shortfall = short, location = LOCATION, ms = NOW_MS}))
      journal('oversold', channel, order_id, sku, oh, oh, rs, rs, 'available ' .. available)
    end
  end
  if units > 0 then
    redis.call('HINCRBY', K_COUNTERS, 'oversold_orders', 1)
    redis.call('HINCRBY', K_COUNTERS, 'oversold_units', units)
  end
  return units
end

-- First sight of the order.
if not state then
  local lines, unknown = {}, {}
  if req ~= '' then lines, unknown = expand(cjson.decode(req)) end
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
  return {APPLIED, new_state, oversold_check(order, totals, after), #unknown}
end

-- Partial release: only the given lines, once per event id.
if action == 'release' and event_id ~= '' then
  if state ~= 'reserved' then return {NOOP, state} end
  if redis.call('HEXISTS', K_ORDER, 'ev:' .. event_id) == 1 then return {NOOP, state} end
  redis.call('HSET', K_ORDER, 'ev:' .. event_id, NOW_MS)
  local to_release, kept, remaining = {}, {}, 0
  local asked = {}
  for _, line in ipairs(cjson.decode(req)) do asked[line[1]] = (asked[line[1]] or 0) + line[2] end
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
    drop_parked()
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
    drop_parked()
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
