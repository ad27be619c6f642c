-- take_tokens.lua: a token bucket kept in Redis, shared by every process pushing to one channel
-- account, so all workers together stay within the marketplace's request rate. Time is the
-- Redis server's (TIME): workers on hosts whose clocks differ cannot grant each other tokens.
--
-- KEYS[1] inv:{a}:bucket:<channel>   hash tokens, ts_ms
-- KEYS[2] inv:{a}:clock_offset       string: ms added to TIME (absent in production; tests and
--                                    simulations move it to jump ahead for every process)
-- ARGV[1] capacity   ARGV[2] tokens per ms   ARGV[3] cost
-- ARGV[4] "charge" (optional): take the cost even into debt — the marketplace billed a request
--         more than we took for it (WB bills every 4xx answer, 429 aside, as 10) and the next
--         sends must wait for it.
--         "refund": give the cost back (tokens taken for a request that was not sent).
--         "spare": take the cost only if ARGV[5] tokens are left after it (a read-back that
--         must never take what a push could use); else answer the ms until they would be.
--
-- Returns 0 when the tokens were taken, else the ms to wait before they would be there.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  + tonumber(redis.call('GET', KEYS[2]) or '0')
local capacity, rate, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or capacity)
local ts = tonumber(redis.call('HGET', KEYS[1], 'ts_ms') or now)
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if ARGV[4] == 'charge' then
  tokens = tokens - cost
elseif ARGV[4] == 'refund' then
  tokens = math.min(capacity, tokens + cost)
elseif ARGV[4] == 'spare' then
  local keep = tonumber(ARGV[5])
  if tokens - cost >= keep then
    tokens = tokens - cost
  else
    wait = math.ceil((cost + keep - tokens) / rate)
  end
elseif tokens >= cost then
  tokens = tokens - cost
else
  wait = math.ceil((cost - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts_ms', now)
return wait
