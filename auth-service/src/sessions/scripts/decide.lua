-- The rotation decision table (docs/ARCHITECTURE.md § Rotation) as a pure function: no
-- redis.call, so the table is unit-tested without Redis (sessions/decision_tests.rs) and
-- rotate.lua only reads the session, asks, and applies.
--
-- s: the session's fields as HMGET gives them (strings, or false when absent):
--    gen, rot, grace, abs, used, lost, jkt, rid (the id of the request that made the
--    current generation).
-- r: the request: presented (the token's generation), grace_ms, grace_count, idle_ms,
--    hint (the id of an earlier request for this token whose reply may have been lost:
--    this request's own first attempt, or one this instance remembers; '' for none),
--    proof_jkt (the proof key's thumbprint, '' without a proof), now (ms).
-- Returns one of: 'unknown', 'expired', 'rotate', 'wrong_key', 'recovered', 'retry',
-- 'grace_exhausted', 'ahead', 'reused'.
local function decide(s, r)
  if not s.gen then return 'unknown' end
  local gen = tonumber(s.gen)
  if r.now >= tonumber(s.abs) or r.now >= tonumber(s.used) + r.idle_ms then
    return 'expired'
  end
  -- A bound session answers only to proofs of its key (RFC 9449 §5).
  local key_ok = (not s.jkt) or s.jkt == '' or s.jkt == r.proof_jkt
  if r.presented == gen then
    -- Someone holding only the current token must not be able to end the owner's
    -- session: refuse, change nothing.
    if not key_ok then return 'wrong_key' end
    return 'rotate'
  end
  if r.presented == gen - 1 and key_ok then
    -- The last rotation's reply may never have reached the client (the service saw the
    -- call fail, and it was that very rotation: `lost` is only set when the request id
    -- matches): its retry gets the same successor, whenever it comes.
    if s.lost == tostring(r.presented) or (r.hint ~= '' and s.rid == r.hint) then
      return 'recovered'
    end
    if r.grace_ms > 0 and r.now - tonumber(s.rot) < r.grace_ms then
      if tonumber(s.grace) < r.grace_count then return 'retry' end
      return 'grace_exhausted'
    end
  end
  -- A token newer than the stored state: Redis lost writes (fail-over, fsync policy).
  -- Not theft; the session cannot continue either.
  if r.presented > gen then return 'ahead' end
  -- A retired token, or the predecessor with the wrong key (the grace window does not
  -- help a thief without the key): reuse.
  return 'reused'
end
