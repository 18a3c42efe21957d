-- Decides one refresh atomically, on the session hash alone: reads the session, asks
-- decide() (decide.lua, loaded before this file), and applies the answer.
-- KEYS[1] = session hash.
-- ARGV = presented generation, grace ms, grace count, idle ms, lost hint (the id of an
--        earlier request for this token whose reply may not have been delivered, or ''),
--        thumbprint of the request's verified DPoP proof key (empty: no proof), this
--        request's id, clock offset ms (see clock.lua).
-- Replies (first element names the case):
--   {'rotated'|'retried'|'recovered', generation to mint, uid, client id, scope, ttl ms,
--    epoch (the owner's sessions_valid_after at login, or '')}
--   {'unknown'} | {'expired'} | {'grace_exhausted'} | {'wrong_key'} | {'ahead', uid}
--   | {'reused', uid}
local s = redis.call('HMGET', KEYS[1], 'gen', 'rot', 'grace', 'abs', 'used', 'uid', 'cid',
  'scope', 'lost', 'jkt', 'epoch', 'rid')
local action = decide(
  {gen = s[1], rot = s[2], grace = s[3], abs = s[4], used = s[5], lost = s[9], jkt = s[10],
   rid = s[12]},
  {presented = tonumber(ARGV[1]), grace_ms = tonumber(ARGV[2]),
   grace_count = tonumber(ARGV[3]), idle_ms = tonumber(ARGV[4]), hint = ARGV[5],
   proof_jkt = ARGV[6], now = now})
local function granted(case, generation, ttl)
  return {case, tostring(generation), s[6], s[7], s[8], tostring(ttl), s[11] or ''}
end
if action == 'rotate' then
  local gen = tonumber(s[1])
  local ttl = math.min(tonumber(ARGV[4]), tonumber(s[4]) - now)
  redis.call('HSET', KEYS[1], 'gen', gen + 1, 'rot', now_text, 'grace', 0, 'used', now_text,
    'rid', ARGV[7])
  redis.call('HDEL', KEYS[1], 'lost')
  redis.call('PEXPIRE', KEYS[1], ttl)
  return granted('rotated', gen + 1, ttl)
elseif action == 'recovered' then
  return granted('recovered', tonumber(s[1]), redis.call('PTTL', KEYS[1]))
elseif action == 'retry' then
  redis.call('HINCRBY', KEYS[1], 'grace', 1)
  return granted('retried', tonumber(s[1]), redis.call('PTTL', KEYS[1]))
elseif action == 'expired' or action == 'ahead' or action == 'reused' then
  redis.call('DEL', KEYS[1])
  if action == 'expired' then return {'expired'} end
  return {action, s[6]}
end
-- 'unknown', 'wrong_key', 'grace_exhausted': refused, nothing changed.
return {action}
