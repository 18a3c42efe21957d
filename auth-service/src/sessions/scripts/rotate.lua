-- Decides one refresh atomically, on the session hash alone.
-- KEYS[1] = session hash.
-- ARGV = presented generation, grace ms, grace count, idle ms, lost hint (a generation
--        whose rotation reply this instance knows may not have been delivered, or -1),
--        thumbprint of the request's verified DPoP proof key (empty: no proof),
--        clock offset ms (see clock.lua).
-- Replies (first element names the case):
--   {'rotated'|'retried'|'recovered', generation to mint, uid, client id, scope, ttl ms,
--    epoch (the owner's sessions_valid_after at login, or '')}
--   {'unknown'} | {'expired'} | {'grace_exhausted'} | {'wrong_key'} | {'ahead', uid}
--   | {'reused', uid}
local s = redis.call('HMGET', KEYS[1], 'gen', 'rot', 'grace', 'abs', 'used', 'uid', 'cid',
  'scope', 'lost', 'jkt', 'epoch')
if not s[1] then return {'unknown'} end
local presented = tonumber(ARGV[1])
local grace_ms = tonumber(ARGV[2])
local grace_count = tonumber(ARGV[3])
local idle_ms = tonumber(ARGV[4])
local hint = tonumber(ARGV[5])
local gen = tonumber(s[1])
local abs = tonumber(s[4])
if now >= abs or now >= tonumber(s[5]) + idle_ms then
  redis.call('DEL', KEYS[1])
  return {'expired'}
end
-- A bound session answers only to proofs of its key (RFC 9449 §5).
local key_ok = (not s[10]) or s[10] == '' or s[10] == ARGV[6]
local function granted(case, generation, ttl)
  return {case, tostring(generation), s[6], s[7], s[8], tostring(ttl), s[11] or ''}
end
if presented == gen then
  if not key_ok then
    -- Someone holding only the current token must not be able to end the owner's
    -- session: refuse, change nothing.
    return {'wrong_key'}
  end
  local ttl = math.min(idle_ms, abs - now)
  redis.call('HSET', KEYS[1], 'gen', gen + 1, 'rot', now_text, 'grace', 0, 'used', now_text)
  redis.call('HDEL', KEYS[1], 'lost')
  redis.call('PEXPIRE', KEYS[1], ttl)
  return granted('rotated', gen + 1, ttl)
end
if presented == gen - 1 and key_ok then
  -- The last rotation's reply may never have reached the client (the service saw the
  -- call fail): its retry gets the same successor, whenever it comes.
  if s[9] == ARGV[1] or hint == presented then
    return granted('recovered', gen, redis.call('PTTL', KEYS[1]))
  end
  if grace_ms > 0 and now - tonumber(s[2]) < grace_ms then
    if tonumber(s[3]) < grace_count then
      redis.call('HINCRBY', KEYS[1], 'grace', 1)
      return granted('retried', gen, redis.call('PTTL', KEYS[1]))
    end
    return {'grace_exhausted'}
  end
end
-- A retired token, or the predecessor with the wrong key (the grace window does not
-- help a thief without the key): reuse.
redis.call('DEL', KEYS[1])
if presented > gen then
  -- A token newer than the stored state: Redis lost writes (fail-over, fsync policy).
  -- Not theft; the session cannot continue either.
  return {'ahead', s[6]}
end
return {'reused', s[6]}
