-- Removes a session of a dead instance: a no-op unless the stored session
-- still belongs to ARGV[1] (instance ids are unique per process start, so this
-- is the compare-and-delete of whatever token that instance held).
-- KEYS[1] route key. ARGV: dead instance, printed peer id, epoch, events channel.
-- Returns 1 when it removed the session (and published offline), else 0.
local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
local current_instance = string.match(current, '^%d+|([^|]*)|')
if current_instance ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('PUBLISH', ARGV[4], 'off|' .. ARGV[2] .. '|' .. current .. '|' .. ARGV[3] .. '|' .. string.format('%.0f', now_ms))
return 1
