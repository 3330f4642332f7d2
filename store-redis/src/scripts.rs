//! The Lua scripts that make each operation atomic on the server.
//!
//! Redis runs a script without interleaving any other command, so a script's read of
//! the header, its checks and its write are one atomic step; this is how create-only,
//! replace-only and compare-and-set are decided on the server, and how `update`'s
//! optimistic write detects interference. Scripts are sent with `EVALSHA`; after a
//! server restart (`NOSCRIPT`) the `redis` crate loads them again by itself.
//!
//! Reads need no script: `get` sends `GET` and `TIME` in one `MULTI`/`EXEC`
//! transaction and applies the liveness rule to the header with that time.
//!
//! Every script takes `now` as `ARGV[1]`: empty for the server's clock (the default),
//! or the milliseconds of an injected [`Clock`](store_api::Clock). With the server's
//! clock a script reads `TIME` once and uses it for the liveness rule (`live while
//! now < expires_at`, the contract's boundary) and to resolve relative expiries, and
//! sets the server's own expiry (`PXAT`). Redis's own expiry keeps a key until
//! `now > expires_at`, one millisecond longer, so the scripts treat a key at
//! `now == expires_at` as absent themselves and delete the leftover before writing.
//! With an injected clock the server's expiry is never set (the server's time has
//! nothing to do with that clock), and `purge_expired` reclaims expired entries.
//!
//! Lua numbers are doubles: every number the scripts compute with stays below 2^53
//! (versions start near 1.8e15, timestamps are about 1.8e12); larger expiries are
//! capped by the Rust side (see [`crate::format`]). Numbers are formatted with
//! `string.format('%d')`, never `tostring` (which would print `1.8e+15`).

use std::sync::LazyLock;

use redis::Script;

/// Shared by every script: `now` (from `ARGV[1]` or the server's `TIME`),
/// `live_version()`, `server_expires()` and `resolve()`.
macro_rules! prelude {
    () => {
        r#"
local t = redis.call('TIME')
local server_clock = ARGV[1] == ''
local now
if server_clock then
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[1])
end
-- Expiries at or past 2^53 ms get no server-side expiry (see crate::format).
local FAR = 9007199254740992
-- Set by live_version() when it deleted an expired leftover.
local reclaimed = 0

-- The live entry's version (20 digits); nil if absent or expired (an expired leftover,
-- still present only because Redis keeps a key 1 ms longer, is deleted); false if the
-- key holds something this store did not write.
local function live_version()
  local h = redis.call('GETRANGE', KEYS[1], 0, 44)
  if h == '' then
    if redis.call('EXISTS', KEYS[1]) == 1 then return false end
    return nil
  end
  if #h ~= 45 or string.sub(h, 1, 3) ~= 'v1:' or string.sub(h, 24, 24) ~= ':'
      or string.sub(h, 45, 45) ~= ':' then
    return false
  end
  local e = tonumber(string.sub(h, 25, 44))
  if e == nil then return false end
  if e ~= 0 and e <= now then
    redis.call('DEL', KEYS[1])
    reclaimed = 1
    return nil
  end
  return string.sub(h, 4, 23)
end

-- Whether the server should expire an entry expiring at e (nil: never) itself.
local function server_expires(e)
  return server_clock and e ~= nil and e < FAR
end

-- An expiry (kind 'n' never, 'a' absolute 20 digits, 'r' relative ms) as the header's
-- 20 digits and as a number (nil: never).
local function resolve(kind, v)
  if kind == 'n' then return string.rep('0', 20), nil end
  if kind == 'a' then return v, tonumber(v) end
  local e = now + tonumber(v)
  return string.format('%020d', e), e
end
"#
    };
}

/// `KEYS[1]` data key, `KEYS[2]` its version counter. `ARGV`: now, mode (`u` upsert,
/// `c` create-only, `r` replace-only, `v` if-version), expected version (20 digits, for
/// `v`), expiry kind and value, the value.
///
/// Returns `{0, version}` written, `{1}` exists, `{2}` not found, `{3, actual or 0}`
/// version mismatch, `{4}` foreign data, `{5}` the server refused `SET NX/XX` (cannot
/// happen after the script's own check; reported rather than ignored).
pub(crate) static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        prelude!(),
        r#"
local cur = live_version()
if cur == false then return {4} end
local mode = ARGV[2]
if mode == 'c' and cur then return {1} end
if mode == 'r' and not cur then return {2} end
if mode == 'v' and cur ~= ARGV[3] then
  if cur then return {3, tonumber(cur)} end
  return {3, 0}
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  -- A new (or evicted) counter starts at the server's time in microseconds: above every
  -- version it can have issued before, unless it served more than one write per
  -- microsecond on average, which one Redis server cannot do.
  redis.call('SET', KEYS[2], t[1] .. string.format('%06d', tonumber(t[2])))
end
local ver = redis.call('INCR', KEYS[2])
local e20, e = resolve(ARGV[4], ARGV[5])
if e and e <= now then
  -- Stored already expired: indistinguishable from absent.
  redis.call('DEL', KEYS[1])
  return {0, ver}
end
local args = {'SET', KEYS[1], 'v1:' .. string.format('%020d', ver) .. ':' .. e20 .. ':' .. ARGV[6]}
if server_expires(e) then
  table.insert(args, 'PXAT')
  table.insert(args, string.format('%d', e))
end
if mode == 'c' then
  table.insert(args, 'NX')
elseif mode ~= 'u' then
  table.insert(args, 'XX')
end
if not redis.call(unpack(args)) then return {5} end
return {0, ver}
"#
    ))
});

/// A read on a Redis Cluster: `KEYS[1]`'s string and the time of the node that holds it,
/// in one step (the single server's `MULTI GET TIME EXEC`, which a cluster cannot
/// redirect: a transaction that meets `MOVED` is aborted whole). Returns `{value or
/// false, TIME}`.
pub(crate) static READ: LazyLock<Script> =
    LazyLock::new(|| Script::new("return {redis.call('GET', KEYS[1]), redis.call('TIME')}"));

/// `rotate` in one step: `KEYS[1]` the old id's data key, `KEYS[2]` the new id's data
/// key, `KEYS[3]` the new id's version counter (all three in one slot). `ARGV`: now.
/// Moves the live entry of `KEYS[1]` to `KEYS[2]` with its value and expiry and a new
/// version from the new id's counter, unless the new id is live.
///
/// Returns `{0}` the old id absent or expired, `{1}` the new id live, `{2, version}`
/// moved, `{4, n}` foreign data under `KEYS[n]`.
pub(crate) static ROTATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        prelude!(),
        r#"
local cur = live_version()
if cur == false then return {4, 1} end
if cur == nil then return {0} end
local h = redis.call('GETRANGE', KEYS[2], 0, 44)
if h ~= '' then
  if #h ~= 45 or string.sub(h, 1, 3) ~= 'v1:' or string.sub(h, 24, 24) ~= ':'
      or string.sub(h, 45, 45) ~= ':' or tonumber(string.sub(h, 25, 44)) == nil then
    return {4, 2}
  end
  local e2 = tonumber(string.sub(h, 25, 44))
  if e2 == 0 or e2 > now then return {1} end
  redis.call('DEL', KEYS[2])
elseif redis.call('EXISTS', KEYS[2]) == 1 then
  return {4, 2}
end
local raw = redis.call('GET', KEYS[1])
local e20 = string.sub(raw, 25, 44)
local e = tonumber(e20)
if e == 0 then e = nil end
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('SET', KEYS[3], t[1] .. string.format('%06d', tonumber(t[2])))
end
local ver = redis.call('INCR', KEYS[3])
local args = {'SET', KEYS[2], 'v1:' .. string.format('%020d', ver) .. ':' .. e20 .. ':' .. string.sub(raw, 46)}
if server_expires(e) then
  table.insert(args, 'PXAT')
  table.insert(args, string.format('%d', e))
end
redis.call(unpack(args))
redis.call('DEL', KEYS[1])
return {2, ver}
"#
    ))
});

/// `KEYS[1]` data key. `ARGV`: now, the expected version (20 digits) or `''` for any.
/// Returns 1 deleted, 0 absent or expired, -1 another version, -2 foreign data with a
/// version expected (without one, foreign data is deleted and 1 returned).
pub(crate) static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        prelude!(),
        r#"
local cur = live_version()
if cur == false then
  if ARGV[2] ~= '' then return -2 end
  redis.call('DEL', KEYS[1])
  return 1
end
if not cur then return 0 end
if ARGV[2] ~= '' and cur ~= ARGV[2] then return -1 end
redis.call('DEL', KEYS[1])
return 1
"#
    ))
});

/// `KEYS[1]` data key. `ARGV`: now, expiry kind and value. Rewrites only the header's expiry
/// (`SETRANGE`) and the server's expiry; value and version stay. Returns 1 touched, 0
/// absent or expired, -2 foreign data.
pub(crate) static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        prelude!(),
        r#"
local cur = live_version()
if cur == false then return -2 end
if not cur then return 0 end
local e20, e = resolve(ARGV[2], ARGV[3])
if e and e <= now then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('SETRANGE', KEYS[1], 24, e20)
if server_expires(e) then
  redis.call('PEXPIREAT', KEYS[1], string.format('%d', e))
else
  redis.call('PERSIST', KEYS[1])
end
return 1
"#
    ))
});

/// `KEYS[1]` data key. `ARGV`: now. Deletes the entry if it is expired; returns 1 if it
/// did, else 0. Foreign data is left alone.
pub(crate) static PURGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        prelude!(),
        r#"
live_version()
return reclaimed
"#
    ))
});
