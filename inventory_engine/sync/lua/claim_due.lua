-- claim_due.lua: take, exclusively, the marked SKUs a channel may be sent now, in the order
-- they became sendable. (KEYS[1..6]: see _push_lib.lua.)
--
-- KEYS[7] inv:{a}:paused:<channel>       string: server ms until which the channel backs off
-- KEYS[8] inv:{a}:senders:<channel>      zset owner token -> lease end: requests in flight
-- KEYS[9] inv:{a}:clock_offset           string (see server_ms)
-- ARGV[1] owner token   ARGV[2] most SKUs to claim   ARGV[3] lease ms
-- ARGV[4] item window ms (0: the channel has none)   ARGV[5] most marks to look at
-- ARGV[6] most requests in flight at once on this channel, from every sender on every host
--
-- * A SKU in flight (another sender's claim) is never claimed twice: its mark waits until
--   that lease's end, and the owner's settle brings it forward (settle_claims.lua).
-- * A SKU inside its item window waits, marked, until the window opens: the delay queue is
--   ordered by due time, so held SKUs never hide fresh ones (no head-of-line blocking).
-- * A lease that ran out (its sender died) is marked again first; what it sent may have
--   landed, so its accepted value is forgotten and the SKU is sent again.
-- * On a channel with an item window the window starts provisionally at the claim: no second
--   value can leave inside it, even if the owner never settles.
--
-- * A claim that takes anything also takes one of the channel's request slots (a claim
--   without a free slot takes nothing and says so): the marketplace's concurrency limit holds
--   across every sender; the settle gives the slot back, a dead sender's runs out.
--
-- Returns {server now ms, next due ms or -1, {sku, first_ms, allowed_ms, ...}, slots full 0/1}.

local now = server_ms(KEYS[9])
local token, limit, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local window, scan, slots = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])

local function head_due()
  local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #head > 0 then return tonumber(head[2]) end
  return -1
end

local paused = tonumber(redis.call('GET', KEYS[7]) or '0')
if paused > now then
  return {now, paused, {}, 0}
end
redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now)
if redis.call('ZCARD', KEYS[8]) >= slots then
  return {now, head_due(), {}, 1}
end

-- Leases that ran out: their sender died before it settled them.
local lost = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, scan)
for _, sku in ipairs(lost) do
  local claim = redis.call('HGET', KEYS[4], sku)
  local first, allowed = now, now
  if claim then
    local parts = split(claim)
    first, allowed = tonumber(parts[2]), tonumber(parts[3])
  end
  forget_lost_claim(sku)
  remark(sku, first, allowed, now)
end

local claimed, count, looked = {}, 0, 0
while count < limit and looked < scan do
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit - count)
  if #due == 0 then break end
  for _, sku in ipairs(due) do
    looked = looked + 1
    local first, allowed = mark_times(sku)
    local lease_end = redis.call('ZSCORE', KEYS[3], sku)
    local not_before = tonumber(redis.call('HGET', KEYS[5], sku) or '0')
    if lease_end and tonumber(lease_end) > now then
      move_mark(sku, tonumber(lease_end), nil)
    elseif not_before > now then
      move_mark(sku, not_before, not_before)
    else
      if lease_end then forget_lost_claim(sku) end  -- ran out this very ms
      if not_before > allowed then allowed = not_before end
      redis.call('ZREM', KEYS[1], sku)
      redis.call('HDEL', KEYS[2], sku)
      redis.call('ZADD', KEYS[3], now + lease, sku)
      redis.call('HSET', KEYS[4], sku,
        token .. ' ' .. first .. ' ' .. allowed .. ' ' .. not_before .. ' 0')
      if window > 0 then
        redis.call('HSET', KEYS[5], sku, now + window)
      end
      claimed[#claimed + 1] = sku
      claimed[#claimed + 1] = tostring(first)
      claimed[#claimed + 1] = tostring(allowed)
      count = count + 1
    end
  end
end

if count > 0 then
  redis.call('ZADD', KEYS[8], now + lease, token)
end
return {now, head_due(), claimed, 0}
