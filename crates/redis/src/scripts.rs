//! The Lua scripts that make offset assignment, history and fan-out one atomic step in Redis.
//!
//! Redis runs a script without interleaving other commands, so two nodes publishing on the
//! same channel get distinct, consecutive offsets, and the `PUBLISH`es leave Redis in offset
//! order: every node's single pub/sub connection sees a channel's publications in order.

use redis::Script;

/// The start of both scripts: the Redis history a channel's meta belongs to. Each Redis
/// process has its own `run_id`; a channel whose meta names another one was restored from a
/// snapshot or a promoted replica, whose history may lack publications clients already saw
/// (asynchronous persistence and replication lose a tail). Offsets would then be handed out a
/// second time under the same epoch, and a client resuming from one of them would be told
/// `recovered: true` while it missed what was lost. So the epoch is rotated (ARGV[1] is a
/// fresh one), its offsets start again from 1 (as a flushed channel's do, so a subscriber's
/// feed can fetch the new epoch whole from its first publication) and the history is dropped:
/// such a client gets `recovered: false`. Meta written
/// before this check existed has no `run` and is adopted as is.
const RUN_CHECK: &str = r"
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)') or ''
local seen = redis.call('HGET', KEYS[1], 'run')
if seen and seen ~= run then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'offset', 0)
  redis.call('DEL', KEYS[2])
end
if seen ~= run and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'run', run)
end
";

/// Publishes one publication.
///
/// Runs after [`RUN_CHECK`], which defines `run`.
///
/// KEYS: 1 the channel's meta hash (`epoch`, `offset`, `ttl`, `run`), 2 its history list,
/// 3 (idempotent publications only) the key's marker.
/// ARGV: 1 a fresh epoch (used only if the channel has none: a flushed Redis gets a new one),
/// 2 history size, 3 history TTL in ms, 4 meta TTL in s, 5 the pub/sub channel, 6 the body,
/// 7 the idempotency window in ms ('0': not idempotent).
/// Returns `{offset, epoch}`, or `{0, ''}` when the key's marker was already set: a
/// publication with that key was made within the window, so nothing is published.
const PUBLISH: &str = r"
if ARGV[7] ~= '0' and not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[7]) then
  return {0, ''}
end
redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1])
redis.call('HSETNX', KEYS[1], 'run', run)
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

/// Reads a channel's position and the history after a client's position. Runs after
/// [`RUN_CHECK`], which defines `run`.
///
/// KEYS: 1 meta hash, 2 history list. ARGV: 1 a fresh epoch (a subscriber of a channel nobody
/// published on yet fixes the epoch, so the first publication belongs to the epoch it was
/// told), 2 meta TTL in s, 3 the client's epoch ('' for none), 4 the client's offset.
/// Returns `{epoch, offset, ttl_ms, entries}`; `entries` are the last `offset - since`
/// history frames, only when the client's epoch is current.
const RECOVER: &str = r"
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'run', run)
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
            publish: Script::new(&format!("{RUN_CHECK}{PUBLISH}")),
            recover: Script::new(&format!("{RUN_CHECK}{RECOVER}")),
        }
    }
}
