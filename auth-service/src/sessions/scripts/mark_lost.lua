-- Records that the reply of the rotation away from a generation may not have reached the
-- client, so that its retry is recovered instead of counted as reuse. Only the rotation
-- made by the request whose reply was lost is marked (its id must match): a later
-- rotation, whose reply was delivered, stays protected by reuse detection.
-- KEYS[1] = session hash. ARGV[1] = the presented (now retired) generation, ARGV[2] = the
-- id of the request whose reply was lost.
-- Reply: 1 if marked, 0 if that request did not make the current generation.
local s = redis.call('HMGET', KEYS[1], 'gen', 'rid')
if s[1] and tonumber(s[1]) == tonumber(ARGV[1]) + 1 and s[2] == ARGV[2] then
  redis.call('HSET', KEYS[1], 'lost', ARGV[1])
  return 1
end
return 0
