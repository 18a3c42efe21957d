-- Prelude of every session script: the Redis server's clock in milliseconds, plus the
-- service's clock offset, passed as the script's last argument (0 in production; tests
-- move it forward instead of sleeping). Every session decision uses this one clock, so
-- replicas whose clocks drift cannot stretch a grace window or an expiry.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[#ARGV])
local now_text = string.format('%d', now)
