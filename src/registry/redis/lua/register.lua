-- Registers a new session of one peer (see keys.ts for the key layout).
-- KEYS[1] route key "token|instance|session", KEYS[2] token floor of the peer's hash slot,
-- KEYS[3] the peer's own floor of earlier releases (updated while it exists, never created).
-- ARGV: instance, printed peer id, epoch, token floor TTL (s), events channel.
-- Token = max(Redis clock in microseconds, every token handed out in this slot + 1): strictly
-- increasing for the peer even if the Redis clock steps back, as long as the slot's floor lives
-- (it is refreshed by every registration in the slot); after it expired, as long as the clock
-- did not step back by more than the time since. One floor per slot, not per peer: peer-ID
-- churn stores nothing that outlives its sessions.
local clock = redis.call('TIME')
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local now_ms = string.format('%.0f', math.floor(now_us / 1000))
local previous = redis.call('GET', KEYS[1])
local floor = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), tonumber(redis.call('GET', KEYS[3]) or '0'))
if previous then
  floor = math.max(floor, tonumber(string.match(previous, '^(%d+)|')) or 0)
end
local token = string.format('%.0f', math.max(now_us, floor + 1))

redis.call('SET', KEYS[2], token, 'EX', tonumber(ARGV[4]))
redis.call('SET', KEYS[3], token, 'EX', tonumber(ARGV[4]), 'XX')
redis.call('SET', KEYS[1], token .. '|' .. ARGV[1] .. '|' .. token)

-- One script, one connection: every subscriber sees offline(old) before online(new).
if previous then
  redis.call('PUBLISH', ARGV[5], 'off|' .. ARGV[2] .. '|' .. previous .. '|' .. ARGV[3] .. '|' .. now_ms)
end
redis.call('PUBLISH', ARGV[5], 'on|' .. ARGV[2] .. '|' .. token .. '|' .. ARGV[1] .. '|' .. token .. '|' .. ARGV[3] .. '|' .. now_ms)
return { token, previous or false }
