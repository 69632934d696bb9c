-- Returns the identity of the registry's data set, creating it when missing
-- (a missing epoch means Redis started empty or lost its data).
-- KEYS[1] epoch key. ARGV[1] candidate epoch. Returns { epoch, 1 if created else 0 }.
local epoch = redis.call('GET', KEYS[1])
if epoch then
  return { epoch, 0 }
end
redis.call('SET', KEYS[1], ARGV[1])
return { ARGV[1], 1 }
