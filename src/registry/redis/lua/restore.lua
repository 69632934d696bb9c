-- Re-registers a session this instance still holds after Redis lost it (epoch
-- change, failover that dropped a write, instance wrongly reaped).
-- KEYS[1] route key, KEYS[2] token floor of the peer's hash slot, KEYS[3] the peer's own floor
-- of earlier releases (as in register.lua).
-- ARGV: instance, printed peer id, epoch, token floor TTL (s), events channel,
--       the session's current token, the session id (its first token).
-- Never overrides a newer session: returns { false, current } then.
-- Returns { token, previous or false }; token equals ARGV[6] when nothing was missing.
local current = redis.call('GET', KEYS[1])
if current then
  local current_token, current_instance, current_session = string.match(current, '^(%d+)|([^|]*)|(%d+)$')
  if current_instance == ARGV[1] and current_session == ARGV[7] then
    return { current_token, false }
  end
  if tonumber(current_token) > tonumber(ARGV[6]) then
    return { false, current }
  end
end

local clock = redis.call('TIME')
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local now_ms = string.format('%.0f', math.floor(now_us / 1000))
local floor = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), tonumber(redis.call('GET', KEYS[3]) or '0'))
-- A current session here is older than ours (checked above), so ARGV[6] + 1 is above it too.
local token = string.format('%.0f', math.max(now_us, floor + 1, tonumber(ARGV[6]) + 1))

redis.call('SET', KEYS[2], token, 'EX', tonumber(ARGV[4]))
redis.call('SET', KEYS[3], token, 'EX', tonumber(ARGV[4]), 'XX')
redis.call('SET', KEYS[1], token .. '|' .. ARGV[1] .. '|' .. ARGV[7])

if current then
  redis.call('PUBLISH', ARGV[5], 'off|' .. ARGV[2] .. '|' .. current .. '|' .. ARGV[3] .. '|' .. now_ms)
end
redis.call('PUBLISH', ARGV[5], 'on|' .. ARGV[2] .. '|' .. token .. '|' .. ARGV[1] .. '|' .. ARGV[7] .. '|' .. ARGV[3] .. '|' .. now_ms)
return { token, current or false }
