'use strict'
// Production mode: two Rust servers sharing PostgreSQL and Redis, each
// reached through a proxy the test can cut. Real processes, real services.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Client } = require('pg')
const { start, keys } = require('./lib/servers')
const { proxy } = require('./lib/proxy')
const { connect, until, sleep, openMessage } = require('./lib/client')

const ADMIN = process.env.CHATSEAL_TEST_PG || 'postgres://root@127.0.0.1:5432/test'
const REDIS_PORT = Number(process.env.CHATSEAL_TEST_REDIS_PORT || 6379)
const FAST = { ratePerSec: 100000, rateBurst: 100000 }
let admin, dbName, pgProxy, redisProxy, env, keyDir, keyringFile, firstKey

function writeKeyring(keyring) {
  fs.writeFileSync(`${keyringFile}.tmp`, JSON.stringify(keyring), { mode: 0o600 })
  fs.renameSync(`${keyringFile}.tmp`, keyringFile)
}
const servers = []
const sockets = []

before(async () => {
  admin = new Client({ connectionString: ADMIN })
  await admin.connect()
  dbName = `chatseal_cluster_${process.pid}_${Date.now()}`
  await admin.query(`CREATE DATABASE ${dbName}`)
  const url = new URL(ADMIN)
  pgProxy = await proxy(Number(url.port || 5432), url.hostname)
  redisProxy = await proxy(REDIS_PORT)
  url.port = String(pgProxy.port)
  url.pathname = `/${dbName}`
  // Servers of one cluster share the keyring (and the database and Redis).
  keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatseal-cluster-'))
  keyringFile = path.join(keyDir, 'keyring.json')
  firstKey = crypto.randomBytes(32).toString('base64')
  writeKeyring({ primary: 1, min_decrypt: 1, keys: [{ id: 1, key: firstKey }] })
  env = {
    CHATSEAL_KEYRING_FILE: keyringFile,
    DATABASE_URL: url.toString(),
    REDIS_URL: `redis://127.0.0.1:${redisProxy.port}`,
    CHATSEAL_REDIS_CHANNEL: `chatseal-test-${process.pid}-${Date.now()}`,
  }
  for (let i = 0; i < 2; i++) servers.push(await start('rust', { env, limits: FAST }))
  for (const s of servers) await until(async () => (await health(s)).redis === 'ok', 10000, 'redis subscription')
})

after(async () => {
  for (const s of sockets) s.close()
  for (const s of servers) await s.stop()
  await pgProxy?.close()
  await redisProxy?.close()
  await admin?.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)
  await admin?.end()
  if (keyDir) fs.rmSync(keyDir, { recursive: true, force: true })
})

async function health(server) {
  try {
    const res = await fetch(server.url + '/healthz', { signal: AbortSignal.timeout(3000) })
    return { ...(await res.json()), http: res.status }
  } catch {
    return { http: 0 }
  }
}

async function client(server, name, room) {
  const s = await connect(server.url, { name })
  sockets.push(s)
  const join = await s
    .timeout(5000)
    .emitWithAck('join', { room })
    .catch((e) => {
      throw new Error(`${e.message} (join ${room} as ${name})\n${servers.map((v) => v.log.slice(-15).join('\n')).join('\n--\n')}`)
    })
  assert.equal(join.ok, true)
  s.keys = join.keys
  s.historyId = join.historyId
  return s
}

const send = (s, room, message, clientId) =>
  s
    .timeout(8000)
    .emitWithAck('chat message', { message, room, clientId })
    .catch((e) => {
      throw new Error(`${e.message} (chat message ${message} in ${room})\n${servers.map((v) => v.log.slice(-15).join('\n')).join('\n--\n')}`)
    })
const ids = (s, room) => s.received.filter((m) => m.room === room).map((m) => m.id)

// `until` with an async predicate.
async function untilAsync(pred, ms, what) {
  const deadline = Date.now() + ms
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

test('a message sent on one server reaches readers on the other; seq is gap-free', async () => {
  const room = 'across'
  const a = await client(servers[0], 'ann', room)
  const b = await client(servers[1], 'bob', room)
  const acks = await Promise.all([
    ...Array.from({ length: 30 }, (_, i) => send(a, room, `a${i}`)),
    ...Array.from({ length: 30 }, (_, i) => send(b, room, `b${i}`)),
  ])
  assert.ok(acks.every((x) => x.ok))
  assert.deepEqual(acks.map((x) => x.seq).sort((x, y) => x - y), Array.from({ length: 60 }, (_, i) => i + 1))
  // One database, one history: a client moving between servers keeps its seqs.
  assert.equal(typeof a.historyId, 'string')
  assert.equal(a.historyId, b.historyId)
  for (const reader of [a, b]) {
    await until(() => new Set(ids(reader, room)).size === 60, 10000, 'all 60 on each server')
    assert.equal(ids(reader, room).length, 60, 'no duplicates')
    // Each sender's messages arrive in the order they were sent.
    const texts = await Promise.all(reader.received.filter((m) => m.room === room).map((m) => openMessage(reader.keys, m)))
    for (const p of ['a', 'b']) {
      const mine = texts.filter((t) => t.startsWith(p)).map((t) => Number(t.slice(1)))
      assert.deepEqual(mine, Array.from({ length: 30 }, (_, i) => i))
    }
  }
})

test('typing on one server reaches the room on the other, once', async () => {
  const room = 'typing-across'
  const a = await client(servers[0], 'tyann', room)
  const b = await client(servers[1], 'tybob', room)
  const seen = []
  b.on('typing', (t) => seen.push(t))
  a.on('typing', (t) => seen.push({ ...t, wrong: 'to the sender' }))
  const ack = await a.timeout(5000).emitWithAck('typing', { room })
  assert.equal(ack.ok, true)
  await until(() => seen.length >= 1, 5000, 'typing across servers')
  await sleep(300)
  assert.deepEqual(seen, [{ room, name: '~tyann', typing: true }])
})

test('presence across servers: a name on the other server comes and goes', async () => {
  const room = 'presence-across'
  const a = await client(servers[0], 'prann', room)
  const events = []
  a.on('presence', (p) => p.room === room && events.push(p))
  const b = await connect(servers[1].url, { name: 'prbob' })
  sockets.push(b)
  await b.timeout(5000).emitWithAck('join', { room })
  await until(() => events.some((e) => e.name === '~prbob' && e.online), 10000, 'bob online on A')
  // A join on A now lists bob, who is on B.
  const c = await connect(servers[0].url, { name: 'prcat' })
  sockets.push(c)
  const ack = await c.timeout(5000).emitWithAck('join', { room })
  assert.deepEqual(ack.presence, ['~prann', '~prbob', '~prcat'])
  b.close()
  await until(() => events.some((e) => e.name === '~prbob' && !e.online), 10000, 'bob offline on A')
})

test('Redis unreachable: each server keeps serving; readers catch up when it is back', async () => {
  const room = 'outage'
  const a = await client(servers[0], 'cara', room)
  const b = await client(servers[1], 'dan', room)
  redisProxy.cut()
  await untilAsync(async () => (await health(servers[0])).redis === 'unavailable', 10000, 'redis down in health')
  assert.equal((await health(servers[0])).http, 200, 'still serving')
  const fromA = await Promise.all(Array.from({ length: 10 }, (_, i) => send(a, room, `a${i}`)))
  const fromB = await Promise.all(Array.from({ length: 10 }, (_, i) => send(b, room, `b${i}`)))
  assert.ok([...fromA, ...fromB].every((x) => x.ok), 'sends are acked and stored while Redis is away')
  await until(() => ids(a, room).length >= 10 && ids(b, room).length >= 10, 5000, 'local deliveries')
  redisProxy.restore()
  const all = new Set([...fromA, ...fromB].map((x) => x.id))
  for (const reader of [a, b]) {
    await until(() => [...all].every((id) => ids(reader, room).includes(id)), 15000, 'catch-up after Redis is back')
    assert.equal(ids(reader, room).length, 20, 'nothing twice')
  }
  for (const s of servers) await untilAsync(async () => (await health(s)).redis === 'ok', 10000, 'redis back in health')
})

test('after a Redis outage a server delivers everything it missed: to lobby listeners, and a backlog of several pages', async () => {
  // A server of its own, started for this test: it has delivered nothing
  // yet, as after a restart, and reads 50 messages a page.
  const fresh = await start('rust', { env: { ...env, CHATSEAL_HISTORY_LIMIT: '50' }, limits: FAST })
  try {
    await untilAsync(async () => (await health(fresh)).redis === 'ok', 10000, 'redis subscription')
    // In the lobby from its connect, never a join: nothing says where its
    // delivery starts but the server.
    const listener = await connect(fresh.url, { name: 'lena' })
    sockets.push(listener)
    const reader = await client(fresh, 'rob', 'backlog')
    const sender = await client(servers[0], 'sam', 'backlog')
    redisProxy.cut()
    await untilAsync(async () => (await health(fresh)).redis === 'unavailable', 10000, 'redis down in health')
    const lobby = await Promise.all(Array.from({ length: 20 }, (_, i) => send(sender, 'lobby', `l${i}`)))
    const backlog = []
    for (let i = 0; i < 3; i++) {
      backlog.push(...(await Promise.all(Array.from({ length: 40 }, (_, j) => send(sender, 'backlog', `b${i}-${j}`)))))
    }
    assert.ok([...lobby, ...backlog].every((x) => x.ok), 'stored while Redis is away')
    redisProxy.restore()
    // Within seconds of Redis being back, not a page per sweep (30 s).
    await until(() => lobby.every((x) => ids(listener, 'lobby').includes(x.id)), 10000, 'the lobby after the outage')
    await until(() => backlog.every((x) => ids(reader, 'backlog').includes(x.id)), 10000, 'a backlog of three pages')
    assert.equal(ids(listener, 'lobby').length, lobby.length, 'nothing twice')
    assert.equal(ids(reader, 'backlog').length, backlog.length, 'nothing twice')
    await untilAsync(async () => (await health(servers[0])).redis === 'ok', 10000, 'redis back in health')
  } finally {
    await fresh.stop()
  }
})

test('a lobby nobody here was in during an outage does not flood the next socket with older messages', async () => {
  const fresh = await start('rust', { env, limits: FAST })
  try {
    await untilAsync(async () => (await health(fresh)).redis === 'ok', 10000, 'redis subscription')
    const sender = await connect(servers[0].url, { name: 'oli' })
    sockets.push(sender)
    redisProxy.cut()
    await untilAsync(async () => (await health(fresh)).redis === 'unavailable', 10000, 'redis down in health')
    const before = await Promise.all(Array.from({ length: 20 }, (_, i) => send(sender, 'lobby', `old${i}`)))
    assert.ok(before.every((x) => x.ok))
    redisProxy.restore()
    await untilAsync(async () => (await health(fresh)).redis === 'ok', 10000, 'redis back in health')
    await sleep(2000) // the sweep that follows a resubscribe
    const listener = await connect(fresh.url, { name: 'pia' })
    sockets.push(listener)
    const after = await send(sender, 'lobby', 'new')
    await until(() => ids(listener, 'lobby').includes(after.id), 10000, 'the new lobby message')
    await sleep(2500) // the catch-up of gaps runs every second
    assert.deepEqual(ids(listener, 'lobby'), [after.id], 'only what was stored after it connected')
  } finally {
    await fresh.stop()
  }
})

test('Redis that hangs (connections open, nothing forwarded) shows in health, and readers get everything once it answers', async () => {
  const room = 'hung'
  const a = await client(servers[0], 'gil', room)
  const b = await client(servers[1], 'hal', room)
  redisProxy.freeze()
  try {
    // Nothing comes, not even a server's own heartbeat: the link is dead.
    for (const s of servers) await untilAsync(async () => (await health(s)).redis === 'unavailable', 15000, 'a hung Redis in health')
    const sent = await Promise.all(Array.from({ length: 10 }, (_, i) => send(a, room, `h${i}`)))
    assert.ok(sent.every((x) => x.ok), 'stored while Redis hangs')
    redisProxy.thaw()
    await until(() => sent.every((x) => ids(b, room).includes(x.id)), 10000, 'delivery once Redis answers')
    assert.equal(ids(b, room).length, sent.length, 'nothing twice')
    for (const s of servers) await untilAsync(async () => (await health(s)).redis === 'ok', 10000, 'redis back in health')
  } finally {
    redisProxy.thaw()
  }
})

test('PostgreSQL unreachable: chat message is answered UNAVAILABLE, never ok; service resumes', async () => {
  const room = 'nodb'
  const a = await client(servers[0], 'erin', room)
  pgProxy.cut()
  const refused = await send(a, room, 'while the database is away', 'nodb-1')
  assert.equal(refused.ok, false)
  assert.equal(refused.error.code, 'UNAVAILABLE')
  assert.equal((await health(servers[0])).http, 503)
  pgProxy.restore()
  let ack
  await untilAsync(async () => (ack = await send(a, room, 'after the database is back', 'nodb-2')).ok, 20000, 'service to resume')
  assert.equal((await health(servers[0])).http, 200)
  // The refused message was never stored: only the later one is there.
  const b = await client(servers[1], 'fred', room)
  const caught = await b.timeout(5000).emitWithAck('join', { room, since: 0 })
  const texts = await Promise.all(caught.missed.map((m) => openMessage(caught.keys, m)))
  assert.deepEqual(texts, ['after the database is back'])
  assert.equal(ack.seq, 1)
})

test('key rotation reaches every server without a restart; old messages still open', async () => {
  const room = 'rotate'
  const a = await client(servers[0], 'ivy', room)
  const b = await client(servers[1], 'jon', room)
  const old = await send(a, room, 'before the rotation')
  await until(() => ids(b, room).includes(old.id), 10000, 'delivery before rotation')
  const announced = [[], []]
  a.on('room key', (m) => announced[0].push(m))
  b.on('room key', (m) => announced[1].push(m))
  writeKeyring({ primary: 2, min_decrypt: 1, keys: [{ id: 1, key: firstKey }, { id: 2, key: crypto.randomBytes(32).toString('base64') }] })
  for (const s of servers) s.child.kill('SIGHUP')
  for (const list of announced) await until(() => list.some((m) => m.room === room && m.key.id === 2), 10000, 'room key on both servers')
  const fresh = await send(b, room, 'after the rotation')
  await until(() => ids(a, room).includes(fresh.id), 10000, 'cross-server delivery after rotation')
  const msg = a.received.find((m) => m.id === fresh.id)
  assert.equal(msg.keyId, 2)
  assert.equal(msg.epoch, 0)
  for (const list of announced) assert.equal(list.find((m) => m.room === room).key.epoch, 0, 'a rotation keeps the room\'s epoch')
  const keys = [...a.keys, announced[0].find((m) => m.room === room).key]
  assert.equal(await openMessage(keys, msg), 'after the rotation')
  assert.equal(await openMessage(keys, a.received.find((m) => m.id === old.id)), 'before the rotation')
})

test('one `keys rotate` reaches both servers while messages flow; every message opens on both', async () => {
  const room = 'onecommand'
  const a = await client(servers[0], 'kim', room)
  const b = await client(servers[1], 'lou', room)
  const announced = [[], []]
  a.on('room key', (m) => announced[0].push(m))
  b.on('room key', (m) => announced[1].push(m))
  const acks = []
  let stop = false
  const flow = (async () => {
    for (let i = 0; !stop && i < 2000; i++) {
      const ack = await send(i % 2 ? a : b, room, `m${i}`)
      assert.equal(ack.ok, true, JSON.stringify(ack))
      acks.push({ ...ack, text: `m${i}` })
    }
  })()
  await until(() => acks.length >= 20, 10000, 'messages flowing before the rotation')
  const before = acks.length
  const rotated = await keys(['rotate'], { env: { CHATSEAL_KEYRING_FILE: env.CHATSEAL_KEYRING_FILE, DATABASE_URL: env.DATABASE_URL } })
  assert.equal(rotated.code, 0, rotated.stderr)
  const id = Number(/key (\d+) is primary/.exec(rotated.stdout)[1])
  assert.match(rotated.stdout, /on 2 running server\(s\)/)
  await until(() => acks.length >= before + 40, 10000, 'messages flowing after the rotation')
  stop = true
  await flow
  const keyIds = new Set()
  for (const [i, reader] of [a, b].entries()) {
    await until(() => acks.every((x) => ids(reader, room).includes(x.id)), 15000, `every message on server ${i}`)
    // The new key was announced on both servers before either sealed with it.
    const fresh = announced[i].filter((m) => m.room === room).map((m) => m.key)
    assert.ok(fresh.some((k) => k.id === id), `room key ${id} announced on server ${i}`)
    const ring = [...reader.keys, ...fresh]
    for (const ack of acks) {
      const msg = reader.received.find((m) => m.id === ack.id)
      keyIds.add(msg.keyId)
      assert.equal(await openMessage(ring, msg), ack.text)
    }
  }
  assert.ok(keyIds.has(id) && keyIds.size >= 2, `messages under the old and the new key: ${[...keyIds]}`)
})

async function api(server, method, path, body, token) {
  const headers = { 'content-type': 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  const res = await fetch(server.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

async function account(server, name) {
  const password = `pw-${name}-${crypto.randomBytes(4).toString('hex')}`
  assert.equal((await api(server, 'POST', '/api/register', { username: name, password })).status, 201)
  const login = await api(server, 'POST', '/api/login', { username: name, password })
  assert.equal(login.status, 200)
  return login.body.token
}

test('a member removed on one server stops receiving on the other, within seconds', async () => {
  const [A, B] = servers
  const room = `removed-${process.pid}`
  const ownerTok = await account(A, `rown${process.pid}`)
  const gone = `rgone${process.pid}`
  const goneTok = await account(A, gone)
  assert.equal((await api(A, 'POST', '/api/rooms', { name: room, private: true }, ownerTok)).status, 201)
  assert.equal((await api(A, 'POST', `/api/rooms/${room}/members`, { username: gone }, ownerTok)).status, 200)
  const owner = await connect(A.url, { token: ownerTok })
  const member = await connect(B.url, { token: goneTok })
  sockets.push(owner, member)
  for (const s of [owner, member]) assert.equal((await s.timeout(5000).emitWithAck('join', { room })).ok, true)
  const first = await send(owner, room, 'while a member')
  await until(() => member.received.some((m) => m.id === first.id), 10000, 'delivery on B')
  const closed = []
  member.on('room closed', (e) => closed.push(e))
  assert.equal((await api(A, 'DELETE', `/api/rooms/${room}/members/${gone}`, undefined, ownerTok)).status, 200)
  await until(() => closed.length === 1, 10000, 'told on B that the room is closed to it')
  // B hears of it over Redis (or, were that lost, reads the members again
  // within seconds); a message a little after must not reach the socket.
  await sleep(500)
  const later = await send(owner, room, 'after the removal')
  assert.equal(later.ok, true)
  await sleep(1500)
  assert.ok(!member.received.some((m) => m.id === later.id), 'a removed member on B got a message')
  assert.equal((await send(member, room, 'still in?')).error.code, 'FORBIDDEN')
})

test('a removal on one server starts a key epoch on both: members on the other get its key and post under it', async () => {
  const [A, B] = servers
  const room = `epoch-${process.pid}`
  const ownerTok = await account(A, `eown${process.pid}`)
  const stay = `estay${process.pid}`
  const gone = `egone${process.pid}`
  const stayTok = await account(A, stay)
  const goneTok = await account(A, gone)
  assert.equal((await api(A, 'POST', '/api/rooms', { name: room, private: true }, ownerTok)).status, 201)
  for (const u of [stay, gone]) assert.equal((await api(A, 'POST', `/api/rooms/${room}/members`, { username: u }, ownerTok)).status, 200)
  const owner = await connect(A.url, { token: ownerTok })
  const staying = await connect(B.url, { token: stayTok })
  const leaving = await connect(B.url, { token: goneTok })
  sockets.push(owner, staying, leaving)
  const keysOf = new Map()
  for (const s of [owner, staying, leaving]) {
    const ack = await s.timeout(5000).emitWithAck('join', { room })
    assert.equal(ack.epoch, 1)
    keysOf.set(s, [...ack.keys])
    s.on('room key', (e) => keysOf.get(s).push(e.key))
  }
  const removed = await api(A, 'DELETE', `/api/rooms/${room}/members/${gone}`, undefined, ownerTok)
  assert.deepEqual(removed.body, { ok: true, epoch: 2 })
  // Posted on B at once: whether or not B has heard yet, the store takes it
  // only under epoch 2.
  const sent = await send(staying, room, 'right after the removal')
  assert.equal(sent.ok, true)
  await until(() => owner.received.some((m) => m.id === sent.id), 10000, 'delivery on A')
  const msg = owner.received.find((m) => m.id === sent.id)
  assert.equal(msg.epoch, 2)
  assert.equal(await openMessage(keysOf.get(owner), msg), 'right after the removal')
  await until(() => keysOf.get(staying).some((k) => k.epoch === 2), 10000, 'the member on B gets the epoch-2 key')
  assert.ok(!keysOf.get(leaving).some((k) => k.epoch === 2), 'the removed member on B gets no epoch-2 key')
  await assert.rejects(openMessage(keysOf.get(leaving).map((k) => ({ ...k, epoch: 2 })), msg), 'its old keys open nothing of epoch 2')
})

test('a silent name created private on one server: its joiners on the other neither receive nor post', async () => {
  const [A, B] = servers
  const room = `silent-${process.pid}`
  const markerRoom = `marker-${process.pid}`
  const ownerTok = await account(A, `own${process.pid}`)
  // On B, before the name has a row: a guest and an account that will try
  // to post, and a guest and an account that only read; all also join a
  // public room for a marker.
  const onB = async (who) => {
    const s = await connect(B.url, who)
    sockets.push(s)
    for (const r of [room, markerRoom]) assert.equal((await s.timeout(5000).emitWithAck('join', { room: r })).ok, true)
    return s
  }
  const posters = [await onB({ name: 'poster' }), await onB({ token: await account(A, `pst${process.pid}`) })]
  const readers = [await onB({ name: 'lurker' }), await onB({ token: await account(A, `rdr${process.pid}`) })]
  // On A: the owner creates the name private. B has heard nothing of it.
  assert.equal((await api(A, 'POST', '/api/rooms', { name: room, private: true }, ownerTok)).status, 201)
  // Posting from B: the store refuses it, nothing is stored.
  for (const s of posters) {
    const ack = await send(s, room, 'let me in')
    assert.equal(ack.ok, false, JSON.stringify(ack))
    assert.equal(ack.error.code, 'FORBIDDEN')
    // ...and the socket was put out: a second try is refused on B itself.
    assert.equal((await send(s, room, 'again')).error.code, 'FORBIDDEN')
  }
  // A member posts on A; the readers on B must not get it.
  const owner = await connect(A.url, { token: ownerTok })
  sockets.push(owner)
  assert.equal((await owner.timeout(5000).emitWithAck('join', { room })).ok, true)
  assert.equal((await owner.timeout(5000).emitWithAck('join', { room: markerRoom })).ok, true)
  const secret = await send(owner, room, 'members only')
  assert.equal(secret.ok, true)
  // A later message in a public room every B socket is in: delivery on B
  // has passed the secret one.
  const marker = await send(owner, markerRoom, 'marker')
  assert.equal(marker.ok, true)
  for (const s of [...posters, ...readers]) {
    await until(() => s.received.some((m) => m.id === marker.id), 10000, 'marker on B')
  }
  // The catch-up reads the database too: give it a round past the marker.
  await sleep(1500)
  for (const s of [...posters, ...readers]) assert.equal(ids(s, room).length, 0, 'a non-member on B got a member message')
  const stored = await api(A, 'GET', `/api/rooms/${room}/messages`, undefined, ownerTok)
  assert.equal(stored.status, 200, JSON.stringify(stored.body))
  assert.deepEqual(stored.body.map((m) => m.id), [secret.id])
})

test('a server killed mid-traffic: its clients move to the other; nothing acked is lost or doubled', async () => {
  const room = 'failover'
  const reader = await client(servers[1], 'gail', room)
  let writer = await client(servers[0], 'hal', room)
  // Presence: ivy, on the server about to die, drops out within seconds.
  const presence = []
  reader.on('presence', (p) => p.room === 'failover-lounge' && presence.push(p))
  assert.equal((await reader.timeout(5000).emitWithAck('join', { room: 'failover-lounge' })).ok, true)
  await client(servers[0], 'ivy', 'failover-lounge')
  await until(() => presence.some((p) => p.name === '~ivy' && p.online), 10000, 'ivy online on the other server')
  const acked = new Map()
  const unacked = new Map()
  const loop = (async () => {
    for (let i = 0; i < 200; i++) {
      const clientId = `f-${i}`
      unacked.set(clientId, `m${i}`)
      try {
        const ack = await writer.timeout(2000).emitWithAck('chat message', { message: `m${i}`, room, clientId })
        if (!ack.ok) return
        unacked.delete(clientId)
        acked.set(clientId, ack.id)
      } catch {
        return
      }
    }
  })()
  await until(() => acked.size >= 40, 10000, '40 acks')
  await servers[0].stop('SIGKILL')
  await loop
  // The client moves to the surviving server and resends what was in flight.
  writer = await client(servers[1], 'hal', room)
  for (const [clientId, text] of unacked) {
    const ack = await send(writer, room, text, clientId).catch((e) => {
      throw new Error(`resend ${clientId}: ${e.message}\n${servers[1].log.slice(-20).join('\n')}`)
    })
    assert.equal(ack.ok, true)
    acked.set(clientId, ack.id)
  }
  const catchUp = await reader.timeout(5000).emitWithAck('join', { room, since: 0 })
  const stored = catchUp.missed.map((m) => m.id)
  assert.equal(new Set(stored).size, stored.length, 'nothing stored twice')
  for (const id of acked.values()) assert.ok(stored.includes(id), `acked ${id} is stored`)
  const seen = new Set([...ids(reader, room), ...stored])
  assert.equal(seen.size, stored.length)
  // A dead server stops refreshing its presence entries: they lapse.
  await until(() => presence.some((p) => p.name === '~ivy' && !p.online), 20000, 'ivy offline after her server died')
})
