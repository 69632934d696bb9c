-- Compare-and-delete of one peer's session, publishing offline only when it
-- removed something. ARGV[1] names what must still match:
--   "token"    the session's fencing token (a session's own clean-up),
--   "instance" the instance holding it (reaping a dead instance: ids are unique
--              per process start, so this compares whatever token it held).
-- KEYS[1] route key "token|instance|session".
-- ARGV: field, expected value, printed peer id, epoch, events channel.
-- Returns 1 when it removed the session, else 0.
local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
local token, instance = string.match(current, '^(%d+)|([^|]*)|')
local actual = token
if ARGV[1] == 'instance' then
  actual = instance
end
if actual ~= ARGV[2] then
  return 0
end
redis.call('DEL', KEYS[1])
local clock = redis.call('TIME')
local now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('PUBLISH', ARGV[5], 'off|' .. ARGV[3] .. '|' .. current .. '|' .. ARGV[4] .. '|' .. string.format('%.0f', now_ms))
return 1
