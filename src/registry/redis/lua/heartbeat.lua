-- One beat of an instance: refreshes its liveness score (Redis clock, so pods'
-- clocks do not matter), its mesh address and pod name, and claims its pod name.
-- It also stamps the beat with the next value of a counter shared by every
-- instance, keeping its last ARGV[5] stamps: expired-members.lua compares them
-- to tell members that stopped beating from a Redis that processed nobody's beats.
-- KEYS[1] epoch, KEYS[2] members (zset instance -> last beat ms),
-- KEYS[3] member info (hash instance -> "mesh address|pod name"), KEYS[4] pods (hash pod -> instance),
-- KEYS[5] beat counter, KEYS[6] beat stamps (hash instance -> "stamp stamp ...", oldest first).
-- ARGV: instance, mesh address, pod name, candidate epoch, how many stamps to keep.
-- Returns { epoch, 1 if the instance was a member before this beat, predecessor instance of
-- this pod name or false, member info as a flat list }.
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[4]
  redis.call('SET', KEYS[1], epoch)
end
local clock = redis.call('TIME')
local now_ms = string.format('%.0f', tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000))
local was_member = redis.call('ZSCORE', KEYS[2], ARGV[1]) and 1 or 0
redis.call('ZADD', KEYS[2], now_ms, ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
local predecessor = redis.call('HGET', KEYS[4], ARGV[3])
redis.call('HSET', KEYS[4], ARGV[3], ARGV[1])
if predecessor == ARGV[1] then
  predecessor = false
end

local stamp = redis.call('INCR', KEYS[5])
local stamps = {}
for value in string.gmatch(redis.call('HGET', KEYS[6], ARGV[1]) or '', '%d+') do
  -- A stamp not below the new one predates a counter that went back (Redis lost it): dropped.
  if tonumber(value) < stamp then
    stamps[#stamps + 1] = value
  end
end
stamps[#stamps + 1] = string.format('%.0f', stamp)
while #stamps > tonumber(ARGV[5]) do
  table.remove(stamps, 1)
end
redis.call('HSET', KEYS[6], ARGV[1], table.concat(stamps, ' '))

return { epoch, was_member, predecessor or false, redis.call('HGETALL', KEYS[3]) }
