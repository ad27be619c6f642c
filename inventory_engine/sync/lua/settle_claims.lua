-- settle_claims.lua: record what the channel answered for claimed SKUs, for their owner only.
-- (KEYS[1..6]: see _push_lib.lua.)
--
-- KEYS[7] inv:{a}:parked:<channel>   hash sku -> JSON of the channel's refusal
-- KEYS[8] inv:{a}:senders:<channel>  zset owner token -> lease end (its request slot is freed)
-- KEYS[9] inv:{a}:clock_offset       string (see server_ms)
-- KEYS[10] inv:{a}:paused:<channel> string: server ms until which the channel backs off
-- KEYS[11] inv:{a}:accepted_item:<channel>  hash sku -> the marketplace id the accepted value
--                                           went to (a re-listed SKU is sent to its new id)
-- ARGV[1] owner token   ARGV[2] item window ms (0: none)
-- ARGV[3] pause ms: the request failed and the channel backs off this long (0: no pause)
-- then 6 per SKU:
--         sku, outcome, value, delay ms, parked JSON, marketplace item id
--
-- Outcomes:
--   accepted   the channel took `value`: remembered; the item window starts now
--   unchanged  not sent: the channel already shows the value (coalesced away)
--   not_listed not sent: the SKU is not sold on this channel
--   rejected   refused for good: parked with the channel's reason
--   throttled  the item window was not over: marked again, due after `delay`
--   retry      a passing problem, or not sent (no tokens): marked again after `delay`; the
--              provisional window is taken back (nothing landed)
--   ambiguous  the request failed without saying whether it landed (5xx, timeout): marked
--              again after `delay`, the accepted value forgotten (so the latest value is sent
--              whatever it is), the provisional window taken back
--
-- A settle only acts for the lease's owner. A reply that comes after its lease ran out (and
-- the SKU may since be claimed by another sender) changes nothing but this: if it says a
-- value landed (accepted or ambiguous), that value may now be overwriting a newer one, so
-- the SKU is sent again after the current owner (tainted) or at once.
--
-- A change marked while the SKU was in flight waits in the delay queue until the lease's end;
-- the settle brings it forward to now (or the item window's end).
--
-- Returns {server now ms, settled, stale, next due ms or -1}.

local now = server_ms(KEYS[9])
local token, window, pause = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local settled, stale = 0, 0
if pause > 0 then
  redis.call('SET', KEYS[10], now + pause, 'PX', pause + 60000)
end

for i = 4, #ARGV, 6 do
  local sku, outcome, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local delay, parked, item = tonumber(ARGV[i + 3]), ARGV[i + 4], ARGV[i + 5]
  local claim = redis.call('HGET', KEYS[4], sku)
  local parts = claim and split(claim) or nil
  if not parts or parts[1] ~= token then
    stale = stale + 1
    if outcome == 'accepted' or outcome == 'ambiguous' then
      if parts then
        parts[5] = '1'
        redis.call('HSET', KEYS[4], sku, table.concat(parts, ' '))
      else
        redis.call('HDEL', KEYS[6], sku)
        remark(sku, now, now, now)
      end
    end
  else
    settled = settled + 1
    local first, allowed = tonumber(parts[2]), tonumber(parts[3])
    local prev_nb, tainted = parts[4], parts[5] == '1'
    redis.call('ZREM', KEYS[3], sku)
    redis.call('HDEL', KEYS[4], sku)
    local due = nil
    if outcome == 'accepted' then
      if tainted then
        redis.call('HDEL', KEYS[6], sku)
        due = now
      else
        redis.call('HSET', KEYS[6], sku, value)
        redis.call('HSET', KEYS[11], sku, item)
      end
      redis.call('HDEL', KEYS[7], sku)
      if window > 0 then redis.call('HSET', KEYS[5], sku, now + window) end
    elseif outcome == 'rejected' then
      redis.call('HSET', KEYS[7], sku, parked)
      if window > 0 then redis.call('HSET', KEYS[5], sku, prev_nb) end
    elseif outcome == 'throttled' then
      redis.call('HSET', KEYS[5], sku, now + delay)
      if tainted then redis.call('HDEL', KEYS[6], sku) end
      due = now + delay
      if due > allowed then allowed = due end
    elseif outcome == 'retry' or outcome == 'ambiguous' then
      if window > 0 then redis.call('HSET', KEYS[5], sku, prev_nb) end
      if outcome == 'ambiguous' or tainted then redis.call('HDEL', KEYS[6], sku) end
      due = now + delay
    else  -- unchanged, not_listed: nothing was sent
      if window > 0 then redis.call('HSET', KEYS[5], sku, prev_nb) end
      if tainted then
        redis.call('HDEL', KEYS[6], sku)
        due = now
      end
    end
    -- A change made during the flight: due now, or when the item window opens.
    if redis.call('ZSCORE', KEYS[1], sku) then
      local not_before = tonumber(redis.call('HGET', KEYS[5], sku) or '0')
      if not_before > now then
        move_mark(sku, not_before, not_before)
      else
        move_mark(sku, now, nil)
      end
    end
    if due then remark(sku, first, allowed, due) end
  end
end
redis.call('ZREM', KEYS[8], token)
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local next_due = -1
if #head > 0 then next_due = tonumber(head[2]) end
return {now, settled, stale, next_due}
