-- Deletes a session if the given user owns it.
-- KEYS[1] = session hash. ARGV[1] = the user that must own it.
-- Reply: 1 if deleted, 0 otherwise.
if redis.call('HGET', KEYS[1], 'uid') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
