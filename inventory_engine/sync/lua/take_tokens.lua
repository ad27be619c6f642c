-- take_tokens.lua: a token bucket kept in Redis, shared by every process pushing to one channel
-- account, so all workers together stay within the marketplace's request rate.
--
-- KEYS[1] inv:{a}:bucket:<channel>   hash tokens, ts_ms
-- ARGV[1] now_ms   ARGV[2] capacity   ARGV[3] tokens per ms   ARGV[4] cost
-- ARGV[5] "charge" (optional): take the cost even into debt — the marketplace billed a request
--         more than we took for it (WB bills a 409 as 10) and the next sends must wait for it.
--
-- Returns 0 when the tokens were taken, else the ms to wait before they would be there.

local now, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local rate, cost = tonumber(ARGV[3]), tonumber(ARGV[4])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or capacity)
local ts = tonumber(redis.call('HGET', KEYS[1], 'ts_ms') or now)
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait = 0
if ARGV[5] == 'charge' then
  tokens = tokens - cost
elseif tokens >= cost then
  tokens = tokens - cost
else
  wait = math.ceil((cost - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts_ms', now)
return wait
