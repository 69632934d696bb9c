-- Registers a new session of one peer (see redis-keys.ts for the key layout).
-- KEYS[1] route key "token|instance|session", KEYS[2] token floor of this peer.
-- ARGV: instance, printed peer id, epoch, token floor TTL (s), events channel.
-- Token = max(previous token + 1, Redis clock in microseconds): strictly
-- increasing while the floor key lives, and still increasing after it expired
-- (or the data was lost) as long as the Redis clock does not run backwards.
local clock = redis.call('TIME')
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local now_ms = string.format('%.0f', math.floor(now_us / 1000))
local floor = tonumber(redis.call('GET', KEYS[2]) or '0')
local token = string.format('%.0f', math.max(now_us, floor + 1))
local previous = redis.call('GET', KEYS[1])

redis.call('SET', KEYS[2], token, 'EX', tonumber(ARGV[4]))
redis.call('SET', KEYS[1], token .. '|' .. ARGV[1] .. '|' .. token)

-- One script, one connection: every subscriber sees offline(old) before online(new).
if previous then
  redis.call('PUBLISH', ARGV[5], 'off|' .. ARGV[2] .. '|' .. previous .. '|' .. ARGV[3] .. '|' .. now_ms)
end
redis.call('PUBLISH', ARGV[5], 'on|' .. ARGV[2] .. '|' .. token .. '|' .. ARGV[1] .. '|' .. token .. '|' .. ARGV[3] .. '|' .. now_ms)
return { token, previous or false }
