-- _lib.lua: helpers shared by every ledger operation. ledger/scripts.py builds one Redis
-- Functions library of this file and every operation (each wrapped in a function that calls
-- begin() first), and the same code as one script per operation where Functions are missing.
-- Every operation has the same KEYS/ARGV prologue:
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

-- Everything below runs once, when the library is loaded (FUNCTION LOAD; or, where Redis has
-- no Functions, at each EVALSHA, see ledger/scripts.py); begin() sets the per-call values at
-- the start of every operation. Redis runs one call at a time, so these upvalues belong to the
-- call running now.
local KEYS, ARGV
local K_ON_HAND, K_RESERVED, K_BUNDLES, K_PARENTS
local K_CATALOG, K_JOURNAL, K_COUNTERS, K_LOCATIONS
local K_OVERSOLD, K_UNKNOWN, K_EXPIRY, K_ORDER
local NOW_MS
-- Not constant: a script working on a known order switches to the location stored with it.
local LOCATION
local N_DIRTY
local JOURNAL_MAXLEN
local RETENTION_MS
-- When the change first became known (an event's receipt); scripts may move it earlier. Dirty
-- marks carry it, so propagation is measured from the event, not from the worker applying it.
local MARK_MS
local FIRST_DIRTY = 13
local FIRST_EXTRA_KEY

local function begin(keys, args)
  KEYS, ARGV = keys, args
  K_ON_HAND, K_RESERVED, K_BUNDLES, K_PARENTS = keys[1], keys[2], keys[3], keys[4]
  K_CATALOG, K_JOURNAL, K_COUNTERS, K_LOCATIONS = keys[5], keys[6], keys[7], keys[8]
  K_OVERSOLD, K_UNKNOWN, K_EXPIRY, K_ORDER = keys[9], keys[10], keys[11], keys[12]
  NOW_MS = tonumber(args[1])
  LOCATION = args[2]
  N_DIRTY = tonumber(args[3])
  JOURNAL_MAXLEN = args[4]
  RETENTION_MS = tonumber(args[5])
  MARK_MS = NOW_MS
  FIRST_EXTRA_KEY = FIRST_DIRTY + N_DIRTY
end

-- Request lines passed flat, ARGV[first ..] = sku, qty, sku, qty, ... (no JSON to decode).
local function request_lines(first)
  local lines = {}
  for i = first, #ARGV, 2 do lines[#lines + 1] = {ARGV[i], tonumber(ARGV[i + 1])} end
  return lines
end

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

-- One counter field before and after moving it by delta. A counter that moves is moved with
-- HINCRBY, whose answer gives both values (one call, not a read and a write); one that does not
-- is only read.
local function move_counter(key, f, delta)
  if delta ~= 0 then
    local after = redis.call('HINCRBY', key, f, delta)
    return after - delta, after
  end
  local now = int_or_zero(redis.call('HGET', key, f))
  return now, now
end

-- Move one SKU's counters by the given deltas, journal it and mark it dirty.
-- Returns on_hand and reserved after the change.
local function change(sku, d_on_hand, d_reserved, op, channel, order_id, reason)
  local f = field(sku)
  local oh0, oh1 = move_counter(K_ON_HAND, f, d_on_hand)
  local rs0, rs1 = move_counter(K_RESERVED, f, d_reserved)
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

-- apply_order_event's own helpers and table, here so that they are made once (the library
-- loads once), not at every call.
local ORDER_ACTIONS = {reserve = true, hold = true, commit = true, final = true,
                       cancel_after_ship = true, release = true}

-- A cancelled order's parked unknown-SKU lines need nobody any more: nothing moved for them and
-- nothing ever will, so they leave the list that waits for a person (`retry`, the gauge and its
-- alert). The order keeps its own `unknown` field for `order show`.
local function drop_parked(channel, order_id)
  redis.call('HDEL', K_UNKNOWN, channel .. '|' .. order_id)
end

-- Oversell check on the counters move_lines left behind (no second read).
local function oversold_check(channel, order_id, order, totals, after)
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
