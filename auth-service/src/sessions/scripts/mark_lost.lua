-- Records that the reply of the rotation away from a generation may not have reached the
-- client, so that its retry is recovered instead of counted as reuse.
-- KEYS[1] = session hash. ARGV[1] = the presented (now retired) generation.
-- Reply: 1 if marked, 0 if the session moved on or is gone.
local gen = redis.call('HGET', KEYS[1], 'gen')
if gen and tonumber(gen) == tonumber(ARGV[1]) + 1 then
  redis.call('HSET', KEYS[1], 'lost', ARGV[1])
  return 1
end
return 0
