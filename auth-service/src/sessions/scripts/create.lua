-- Opens a session at generation 0.
-- KEYS[1] = session hash.
-- ARGV = user id, client id, scope, user agent, idle ms, absolute ms, user epoch,
--        DPoP key thumbprint the session is bound to (empty: a bearer session).
-- Reply: {now ms, ttl ms}.
local idle = tonumber(ARGV[5])
local absolute = tonumber(ARGV[6])
redis.call('HSET', KEYS[1], 'uid', ARGV[1], 'cid', ARGV[2], 'scope', ARGV[3], 'ua', ARGV[4],
  'gen', '0', 'rot', '0', 'grace', '0', 'created', now_text, 'used', now_text,
  'abs', string.format('%d', now + absolute), 'epoch', ARGV[7], 'jkt', ARGV[8])
local ttl = math.min(idle, absolute)
redis.call('PEXPIRE', KEYS[1], ttl)
return {now_text, tostring(ttl)}
