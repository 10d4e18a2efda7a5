"""The Lua scripts of the Redis job store: each read-modify-write runs as one script.

Redis runs a script atomically (no other command interleaves), so a script is the Redis
counterpart of SQLite's `BEGIN IMMEDIATE`. Scripts never decide where a job goes after a
failure (`requeued_or_failed` does, in Python); they check, write and keep the indexes true.

Keys, all under the store's prefix P (ARGV[1] of every script):

    P:job:<id>        hash, one field per `Job` field, each value JSON-encoded
    P:events:<id>     list of JSON events; an event's id is its 1-based index (RPUSH's reply)
    P:seq             counter giving each job its arrival number (seq)
    P:all             zset id -> seq, every job (listing, newest first)
    P:status:<s>      zset id -> seq, the jobs in status s (listing, counts, queue positions)
    P:owner:<o>       zset id -> seq, the jobs of owner o, the key's name (listing its own)
    P:owner-status:<s>:<o>  zset id -> seq, owner o's jobs in status s (listing, its quota)
    P:ready           zset id -> seq, queued jobs a claim may take, oldest first
    P:waiting         zset id -> not_before, queued jobs backing off (claims move them to ready)
    P:running         zset id -> heartbeat_at (recover finds the stale ones)
    P:finished        zset id -> finished_at, terminal jobs (sweep)
    P:idempotency     hash idempotency field -> job id: the JSON-encoded key for `anonymous`
                      (as before owners), `[owner, key]` in JSON for any other owner
    P:workers         zset worker id -> when it was last seen alive (`worker_seen`)
    P:wake            list of tokens, one per submit (at most 64): idle workers block on it

Scripts reach job keys they compute, so on Redis Cluster the prefix needs a hash tag
(e.g. `{easel}`) to keep one store's keys in one slot.

Jobs stored before owners have no `owner` field: they read back as `anonymous`'s, are in
no `owner:` index (an admin's list shows them; they go after their retention), and move
between `owner-status:` sets from their next change on. Every process of one store must
run this version: an older one moves jobs without keeping the owner indexes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from easel.core.identity import ANONYMOUS

# Shared by every script: key names; `reindex`, which moves a job between the index sets
# after its fields changed (`old` is its status before, nil for a new job); and `update`
# and `claim`, which the scripts of those names run, and UPDATE_THEN_CLAIM runs in turn.
_PRELUDE = """
local P = ARGV[1]
local function key(name) return P .. ':' .. name end
local function job_key(id) return P .. ':job:' .. id end
local function status_of(jk)
  local raw = redis.call('HGET', jk, 'status')
  if not raw then return nil end
  return cjson.decode(raw)
end
-- The job's owner, JSON-encoded as stored (jobs from before owners: ANONYMOUS's).
local ANONYMOUS = '__ANONYMOUS__'
local function owner_json(jk)
  return redis.call('HGET', jk, 'owner') or ANONYMOUS
end
local function owner_key(name, owner)
  return key(name .. ':' .. cjson.decode(owner))
end
-- The field of P:idempotency for an owner's key (both JSON-encoded).
local function idem_field(owner, idem)
  if owner == ANONYMOUS then return idem end
  return '[' .. owner .. ',' .. idem .. ']'
end
-- The fields the index sets are computed from: a write touching none needs no reindex.
local INDEXED = {status = true, not_before = true, heartbeat_at = true, finished_at = true}
local function reindex(id, old)
  local jk = job_key(id)
  local new = status_of(jk)
  local seq = redis.call('ZSCORE', key('all'), id)
  if old ~= new then
    local owner = owner_json(jk)
    if old then
      redis.call('ZREM', key('status:' .. old), id)
      redis.call('ZREM', owner_key('owner-status:' .. old, owner), id)
    end
    redis.call('ZADD', key('status:' .. new), seq, id)
    redis.call('ZADD', owner_key('owner-status:' .. new, owner), seq, id)
  end
  for _, name in ipairs({'ready', 'waiting', 'running', 'finished'}) do
    redis.call('ZREM', key(name), id)
  end
  if new == 'queued' then
    local not_before = redis.call('HGET', jk, 'not_before')
    if tonumber(not_before) <= 0 then
      redis.call('ZADD', key('ready'), seq, id)
    else
      redis.call('ZADD', key('waiting'), not_before, id)
    end
  elseif new == 'running' then
    redis.call('ZADD', key('running'), redis.call('HGET', jk, 'heartbeat_at'), id)
  else
    local finished_at = redis.call('HGET', jk, 'finished_at')
    if finished_at ~= 'null' then redis.call('ZADD', key('finished'), finished_at, id) end
  end
end
-- The update whose arguments start at ARGV[a] (see UPDATE): false, the fields, or 1.
local function update(a)
  local id, returning, m = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local n = tonumber(ARGV[a + 3 + m])
  local guard = a + 4 + m
  local jk = job_key(id)
  local old = status_of(jk)
  if not old then return false end
  for i = guard, guard + 2 * n - 1, 2 do
    if redis.call('HGET', jk, ARGV[i]) ~= ARGV[i + 1] then return false end
  end
  local changes, indexed = {}, false
  for i = guard + 2 * n, #ARGV, 2 do
    changes[#changes + 1] = ARGV[i]
    changes[#changes + 1] = ARGV[i + 1]
    indexed = indexed or INDEXED[ARGV[i]] ~= nil
  end
  if #changes > 0 then
    redis.call('HSET', jk, unpack(changes))
    -- Progress, the write made at every step, moves no index: skip the index work.
    if indexed then reindex(id, old) end
  end
  if m > 0 then redis.call('RPUSH', key('events:' .. id), unpack(ARGV, a + 3, a + 2 + m)) end
  if returning == '1' then return redis.call('HGETALL', jk) end
  return 1
end
-- Take the oldest runnable queued job for `worker` (JSON id): its fields, or false.
local function claim(now, worker)
  local due = redis.call('ZRANGEBYSCORE', key('waiting'), '-inf', now)
  for _, id in ipairs(due) do
    redis.call('ZADD', key('ready'), redis.call('ZSCORE', key('all'), id), id)
  end
  redis.call('ZREMRANGEBYSCORE', key('waiting'), '-inf', now)
  -- A job made ready by a caller whose clock runs ahead may not be due by ours: skip it.
  local offset = 0
  while true do
    local batch = redis.call('ZRANGE', key('ready'), offset, offset + 99)
    if #batch == 0 then return false end
    for _, id in ipairs(batch) do
      local jk = job_key(id)
      if tonumber(redis.call('HGET', jk, 'not_before')) <= tonumber(now) then
        redis.call('HINCRBY', jk, 'attempts', 1)
        if redis.call('HGET', jk, 'started_at') == 'null' then
          redis.call('HSET', jk, 'started_at', now)
        end
        redis.call('HSET', jk, 'status', '"running"', 'worker_id', worker,
                   'heartbeat_at', now, 'updated_at', now)
        reindex(id, 'queued')
        -- The job's `started_event` (store.base: a JobStarted, which reads this JSON
        -- back), logged in the same atomic step. No script reads an event's JSON.
        local attempt = tonumber(redis.call('HGET', jk, 'attempts'))
        local started = cjson.encode({type = 'started', attempt = attempt})
        redis.call('RPUSH', key('events:' .. id), started)
        return redis.call('HGETALL', jk)
      end
    end
    offset = offset + #batch
  end
end
"""

# ARGV: P, id, max_queued, max_active (the owner's queued + running; < 0: no limit), JSON
# owner, JSON idempotency key (or 'null'), JSON first event, field, value, ...
# Reply: {'created'} | {'key', fields} | {'id', fields} | {'busy', active} | {'full', queued}
PRELUDE = _PRELUDE.replace("__ANONYMOUS__", json.dumps(ANONYMOUS))

SUBMIT = """
local id, max_queued, max_active = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local owner, idem = ARGV[5], ARGV[6]
local field = idem ~= 'null' and idem_field(owner, idem)
if field then
  local other = redis.call('HGET', key('idempotency'), field)
  if other then
    local found = redis.call('HGETALL', job_key(other))
    if #found > 0 then return {'key', found} end
  end
end
-- The same job sent twice (a retry after a lost reply) is stored once.
local same = redis.call('HGETALL', job_key(id))
if #same > 0 then return {'id', same} end
if max_active >= 0 then
  local active = redis.call('ZCARD', owner_key('owner-status:queued', owner))
    + redis.call('ZCARD', owner_key('owner-status:running', owner))
  if active >= max_active then return {'busy', active} end
end
local queued = redis.call('ZCARD', key('status:queued'))
if queued >= max_queued then return {'full', queued} end
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', job_key(id), unpack(fields))
local seq = redis.call('INCR', key('seq'))
redis.call('ZADD', key('all'), seq, id)
redis.call('ZADD', owner_key('owner', owner), seq, id)
if field then redis.call('HSET', key('idempotency'), field, id) end
reindex(id, nil)
redis.call('RPUSH', key('events:' .. id), ARGV[7])
redis.call('RPUSH', key('wake'), '1')
redis.call('LTRIM', key('wake'), -64, -1)
return {'created'}
"""

# ARGV: P, now, JSON worker id. Reply: the claimed job's fields, or nil.
CLAIM = """
return claim(ARGV[2], ARGV[3])
"""

# ARGV: P, id, returning ('1' | '0'), event count m, m JSON events to log, guard count n,
# n (field, expected value) pairs, then (field, value) pairs to write. Writes (and logs the
# events, in order) only if every guarded field still holds its expected value. Reply: nil
# when unknown or guarded out; else the fields, or 1.
UPDATE = """
return update(2)
"""

# ARGV: P, now, JSON worker id, then UPDATE's arguments from the id on (returning '0').
# A busy worker's finish and its next claim in one step. Reply: {1 | 0, fields | nil}.
UPDATE_THEN_CLAIM = """
local done = update(4) and 1 or 0
return {done, claim(ARGV[2], ARGV[3])}
"""

# ARGV: P, older_than, batch size. Deletes up to a batch of terminal jobs finished before
# older_than, with their events, idempotency key and owner index entries. Reply: the
# deleted jobs' fields.
SWEEP = """
local ids = redis.call('ZRANGEBYSCORE', key('finished'), '-inf', '(' .. ARGV[2],
                       'LIMIT', 0, tonumber(ARGV[3]))
local gone = {}
for _, id in ipairs(ids) do
  local jk = job_key(id)
  local fields = redis.call('HGETALL', jk)
  if #fields > 0 then
    gone[#gone + 1] = fields
    local status, owner = status_of(jk), owner_json(jk)
    redis.call('ZREM', key('status:' .. status), id)
    redis.call('ZREM', owner_key('owner-status:' .. status, owner), id)
    redis.call('ZREM', owner_key('owner', owner), id)
    local idem = redis.call('HGET', jk, 'idempotency_key')
    if idem and idem ~= 'null' then
      local field = idem_field(owner, idem)
      if redis.call('HGET', key('idempotency'), field) == id then
        redis.call('HDEL', key('idempotency'), field)
      end
    end
  end
  redis.call('ZREM', key('finished'), id)
  redis.call('ZREM', key('all'), id)
  redis.call('DEL', jk, key('events:' .. id))
end
return gone
"""

# ARGV: P, index name ('all' | 'status:<s>' | 'owner:<o>' | 'owner-status:<s>:<o>'), max
# score ('+inf' | '(<seq>'), count.
# Reply: {seq, fields} pairs, newest first, read in one snapshot.
PAGE = """
local rows = redis.call('ZREVRANGEBYSCORE', key(ARGV[2]), ARGV[3], '-inf',
                        'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[4]))
local page = {}
for i = 1, #rows, 2 do
  page[#page + 1] = {rows[i + 1], redis.call('HGETALL', job_key(rows[i]))}
end
return page
"""


@dataclass(frozen=True)
class Scripts:
    submit: AsyncScript
    claim: AsyncScript
    update: AsyncScript
    update_then_claim: AsyncScript
    sweep: AsyncScript
    page: AsyncScript

    @classmethod
    def register(cls, client: Redis) -> Scripts:
        """Scripts run by hash (EVALSHA); redis-py loads them again after a server restart."""

        def script(body: str) -> AsyncScript:
            return client.register_script(PRELUDE + body)

        return cls(
            submit=script(SUBMIT),
            claim=script(CLAIM),
            update=script(UPDATE),
            update_then_claim=script(UPDATE_THEN_CLAIM),
            sweep=script(SWEEP),
            page=script(PAGE),
        )
