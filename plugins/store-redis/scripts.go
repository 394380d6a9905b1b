package main

// The lease protocol as Lua, one script per operation, each atomic in Redis.
// Every script takes the time from redis.call('TIME') (the store's clock,
// shared by every pod) and never from a pod; callers' clocks are not an
// input. A job's record is one string key holding the record's JSON, under
// the hash-tagged key {prefix:jobid} so that one job lives in one Redis
// Cluster slot. Scripts answer a flat array (reply.go has its layout):
// status, now_ms, error, lease_expires_ms, acquired, has_record, then the
// record's fields when has_record is 1. An array, not a JSON string: the
// host encodes a reply as JSON, so a JSON string inside it would be escaped
// by the host and unescaped by the guest at every call, which cost more
// than the rest of a get inside wasm (docs/PLUGINS.md "Performance").
// Records are still stored as JSON. No element is ever nil (a nil would end
// the array in Redis' conversion): missing strings are '', numbers 0.
//
// Records carry a TTL of lease + retention_ms, refreshed by every write, so
// a dead job's record expires on its own (DESIGN.md rule 6).

// prelude defines now (unix ms by Redis TIME) and the shared helpers.
const prelude = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function str(v) if v == nil or v == cjson.null then return '' end return tostring(v) end
local function num(v) return tonumber(v) or 0 end
-- reply: see replyFields in reply.go for the order.
local function reply(status, rec, extra)
  extra = extra or {}
  local out = {status, now, str(extra.error), num(extra.lease_expires_ms), extra.acquired and 1 or 0, rec and 1 or 0}
  if rec then
    local f = {str(rec.id), str(rec.item), str(rec.variant), str(rec.params_hash), str(rec.owner), str(rec.owner_url),
      num(rec.epoch), num(rec.lease_expires_ms), str(rec.state), str(rec.manifest_path), str(rec.segment_prefix),
      num(rec.last_completed_segment), num(rec.last_durable_offset_ms), num(rec.last_requested_segment), num(rec.updated_ms)}
    for i = 1, #f do out[#out + 1] = f[i] end
  end
  return out
end
local function save(rec, ttl)
  rec.now_ms = nil
  redis.call('SET', KEYS[1], cjson.encode(rec), 'PX', ttl)
end
local function load()
  local raw = redis.call('GET', KEYS[1])
  if not raw then return nil end
  return cjson.decode(raw)
end
-- fenced answers lost unless owner and epoch match an active record.
local function fenced(rec, owner, epoch)
  if not rec then return 'no record' end
  if rec.owner ~= owner then return 'owner is ' .. tostring(rec.owner) end
  if tonumber(rec.epoch) ~= epoch then return 'epoch is ' .. tostring(rec.epoch) end
  return nil
end
`

// scriptCreate: ARGV record JSON, lease_ms, retention_ms.
const scriptCreate = prelude + `
local cur = load()
if cur then return reply('exists', cur) end
local lease = tonumber(ARGV[2])
local rec = cjson.decode(ARGV[1])
if not rec.epoch or tonumber(rec.epoch) < 1 then rec.epoch = 1 end
rec.state = 'active'
rec.lease_expires_ms = now + lease
rec.updated_ms = now
save(rec, lease + tonumber(ARGV[3]))
return reply('ok', rec)
`

// scriptGet: no ARGV.
const scriptGet = prelude + `
local cur = load()
if not cur then return reply('not_found') end
return reply('ok', cur)
`

// scriptRenew: ARGV owner, epoch, lease_ms, retention_ms, progress JSON.
// A renew after expiry is accepted while nobody took over: the epoch still
// fences every other writer. A released record cannot be renewed.
const scriptRenew = prelude + `
local cur = load()
local why = fenced(cur, ARGV[1], tonumber(ARGV[2]))
if why then return reply('lost', nil, {error = why}) end
if cur.state ~= 'active' then return reply('lost', nil, {error = 'state is ' .. tostring(cur.state)}) end
local lease = tonumber(ARGV[3])
local p = cjson.decode(ARGV[5])
cur.last_completed_segment = math.max(tonumber(cur.last_completed_segment) or -1, tonumber(p.last_completed_segment) or -1)
cur.last_durable_offset_ms = math.max(tonumber(cur.last_durable_offset_ms) or 0, tonumber(p.last_durable_offset_ms) or 0)
if p.last_requested_segment then cur.last_requested_segment = p.last_requested_segment end
cur.lease_expires_ms = now + lease
cur.updated_ms = now
save(cur, lease + tonumber(ARGV[4]))
return reply('ok', nil, {lease_expires_ms = cur.lease_expires_ms})
`

// scriptCommit: ARGV owner, epoch, segment, offset_ms. Keeps the TTL.
const scriptCommit = prelude + `
local cur = load()
local why = fenced(cur, ARGV[1], tonumber(ARGV[2]))
if why then return reply('lost', nil, {error = why}) end
if cur.state ~= 'active' then return reply('lost', nil, {error = 'state is ' .. tostring(cur.state)}) end
cur.last_completed_segment = math.max(tonumber(cur.last_completed_segment) or -1, tonumber(ARGV[3]))
cur.last_durable_offset_ms = math.max(tonumber(cur.last_durable_offset_ms) or 0, tonumber(ARGV[4]))
cur.updated_ms = now
cur.now_ms = nil
redis.call('SET', KEYS[1], cjson.encode(cur), 'KEEPTTL')
return reply('ok')
`

// scriptTakeover: ARGV owner, owner_url, lease_ms, retention_ms. Only an
// expired or released lease is taken over; the epoch (fencing token) rises
// by one, so every write of the previous owner is refused from now on.
const scriptTakeover = prelude + `
local cur = load()
if not cur then return reply('not_found') end
if cur.state ~= 'released' and now < tonumber(cur.lease_expires_ms) then
  return reply('conflict', cur, {error = 'lease of ' .. tostring(cur.owner) .. ' valid for ' .. (tonumber(cur.lease_expires_ms) - now) .. ' ms'})
end
local lease = tonumber(ARGV[3])
cur.epoch = tonumber(cur.epoch) + 1
cur.owner = ARGV[1]
cur.owner_url = ARGV[2]
cur.state = 'active'
cur.lease_expires_ms = now + lease
cur.updated_ms = now
save(cur, lease + tonumber(ARGV[4]))
return reply('ok', cur)
`

// scriptRelease: ARGV owner, epoch, retention_ms. Idempotent for the owner.
const scriptRelease = prelude + `
local cur = load()
local why = fenced(cur, ARGV[1], tonumber(ARGV[2]))
if why then return reply('lost', nil, {error = why}) end
if cur.state ~= 'released' then
  cur.state = 'released'
  cur.lease_expires_ms = now
  cur.updated_ms = now
end
save(cur, tonumber(ARGV[3]))
return reply('ok')
`

// scriptDelete: ARGV owner, epoch. Deleting a missing record is ok.
const scriptDelete = prelude + `
local cur = load()
if not cur then return reply('ok') end
local why = fenced(cur, ARGV[1], tonumber(ARGV[2]))
if why then return reply('lost', nil, {error = why}) end
redis.call('DEL', KEYS[1])
return reply('ok')
`

// scriptTryLock: ARGV owner, ttl_ms. SET NX PX; the holder may renew its
// own lock (same owner: acquired, TTL reset).
const scriptTryLock = prelude + `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return reply('ok', nil, {acquired = true}) end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return reply('ok', nil, {acquired = true})
end
return reply('ok', nil, {acquired = false})
`

// allScripts is every script, loaded by SelfTest.
var allScripts = []string{scriptCreate, scriptGet, scriptRenew, scriptCommit,
	scriptTakeover, scriptRelease, scriptDelete, scriptTryLock}
