//! The Lua scripts that make offset assignment, history and fan-out one atomic step in Redis.
//!
//! Redis runs a script without interleaving other commands, so two nodes publishing on the
//! same channel get distinct, consecutive offsets, and the `PUBLISH`es leave Redis in offset
//! order: every node's single pub/sub connection sees a channel's publications in order.

use redis::Script;

/// Publishes one publication.
///
/// KEYS: 1 the channel's meta hash (`epoch`, `offset`, `ttl`), 2 its history list.
/// ARGV: 1 a fresh epoch (used only if the channel has none: a flushed Redis gets a new one),
/// 2 history size, 3 history TTL in ms, 4 meta TTL in s, 5 the pub/sub channel, 6 the body.
/// Returns `{offset, epoch}`.
const PUBLISH: &str = r"
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
local epoch = redis.call('HGET', KEYS[1], 'epoch')
redis.call('HSET', KEYS[1], 'ttl', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
local frame = 'S' .. offset .. ':' .. epoch .. ':' .. ARGV[6]
local size = tonumber(ARGV[2])
if size > 0 then
  redis.call('RPUSH', KEYS[2], frame)
  redis.call('LTRIM', KEYS[2], -size, -1)
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
redis.call('PUBLISH', ARGV[5], frame)
return {offset, epoch}
";

/// Reads a channel's position and the history after a client's position.
///
/// KEYS: 1 meta hash, 2 history list. ARGV: 1 a fresh epoch (a subscriber of a channel nobody
/// published on yet fixes the epoch, so the first publication belongs to the epoch it was
/// told), 2 meta TTL in s, 3 the client's epoch ('' for none), 4 the client's offset.
/// Returns `{epoch, offset, ttl_ms, entries}`; `entries` are the last `offset - since`
/// history frames, only when the client's epoch is current.
const RECOVER: &str = r"
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
local m = redis.call('HMGET', KEYS[1], 'epoch', 'offset', 'ttl')
local epoch = m[1]
local offset = tonumber(m[2] or '0')
local ttl = m[3] or '0'
local entries = {}
if ARGV[3] ~= '' and ARGV[3] == epoch then
  local n = offset - tonumber(ARGV[4])
  if n > 0 then
    entries = redis.call('LRANGE', KEYS[2], -n, -1)
  end
end
return {epoch, tostring(offset), ttl, entries}
";

/// The compiled scripts (each is sent as `EVALSHA`, falling back to `EVAL` once per
/// connection after a Redis restart forgot it).
pub struct Scripts {
    /// Assigns the offset, appends to history and publishes to the feed in one atomic step,
    /// so history order, offset order and feed order are the same.
    pub publish: Script,
    /// Reads a channel's position and history in one atomic step, so the history read
    /// matches the position returned with it.
    pub recover: Script,
}

impl Default for Scripts {
    fn default() -> Self {
        Self {
            publish: Script::new(PUBLISH),
            recover: Script::new(RECOVER),
        }
    }
}
