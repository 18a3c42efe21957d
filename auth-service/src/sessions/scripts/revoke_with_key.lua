-- Ends a session for whoever presents its refresh token, unless the session is bound to a
-- DPoP key and the request's proof is not of that key: a copied token alone cannot log
-- the owner out.
-- KEYS[1] = session hash. ARGV[1] = thumbprint of the request's proof key (empty: none).
-- Replies: {'revoked', uid} | {'unknown'} | {'wrong_key'}.
local s = redis.call('HMGET', KEYS[1], 'uid', 'jkt')
if not s[1] then return {'unknown'} end
if s[2] and s[2] ~= '' and s[2] ~= ARGV[1] then return {'wrong_key'} end
redis.call('DEL', KEYS[1])
return {'revoked', s[1]}
