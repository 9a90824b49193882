'use strict'
// chatseal/client against a scripted Socket.IO server: the cases a real
// server rarely produces on demand (a gap in the live stream, an envelope
// that does not open, an ack that never comes, the order of events after a
// reconnect). The same SDK against both real servers: tests/sdk.
const { test, afterEach } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { webcrypto, hkdfSync } = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const { Server } = require('socket.io')
const { connect, ChatError } = require('../client')

const KEY = webcrypto.getRandomValues(new Uint8Array(32))
const KEY_B64 = Buffer.from(KEY).toString('base64')
const open = []

afterEach(async () => {
  while (open.length) await open.pop()()
})

/**
 * A room key as the engine derives it (docs/format.md §1): HKDF-SHA256 of
 * the master key, info "chatseal/v1/room-key" ‖ 0 ‖ room, and for an epoch
 * above 0 also ‖ 0 ‖ be32(epoch).
 */
function roomKey(master, room, epoch) {
  const parts = [Buffer.from('chatseal/v1/room-key\0'), Buffer.from(room, 'utf8')]
  if (epoch > 0) {
    const be = Buffer.alloc(5)
    be.writeUInt32BE(epoch, 1)
    parts.push(be)
  }
  return new Uint8Array(hkdfSync('sha256', master, Buffer.alloc(0), Buffer.concat(parts), 32))
}
const b64 = (bytes) => Buffer.from(bytes).toString('base64')

/** Seals like the servers do (docs/format.md), so the SDK has real envelopes to open. */
async function seal(room, id, sender, text, keyId = 1, key = KEY) {
  const header = Buffer.alloc(18)
  header[0] = 1
  header[1] = 1
  header.writeUInt32BE(keyId, 2)
  webcrypto.getRandomValues(header.subarray(6))
  const ck = await webcrypto.subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt'])
  const aad = Buffer.concat([header, Buffer.from(`${room}\0${id}\0${sender}`)])
  const ct = await webcrypto.subtle.encrypt({ name: 'AES-GCM', iv: header.subarray(6), additionalData: aad }, ck, Buffer.from(text))
  return Buffer.concat([header, Buffer.from(ct)]).toString('base64')
}

/**
 * A server that stores like the real ones (seq per room, dedup by
 * clientId, FORBIDDEN before join) and records every event, with knobs for
 * what the test wants to break.
 */
async function fakeServer() {
  const httpServer = http.createServer()
  const io = new Server(httpServer)
  // The Rust server's history route (with a token): GET /api/rooms/:room/messages?before&limit.
  httpServer.on('request', (req, res) => {
    const m = /^\/api\/rooms\/([^/]+)\/messages\?before=(\d+)&limit=(\d+)$/.exec(req.url)
    if (!m) return // socket.io's own requests
    const before = Number(m[2])
    const page = history(decodeURIComponent(m[1])).filter((msg) => msg.seq < before).slice(-Number(m[3]))
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(page))
  })
  const state = { rooms: new Map(), events: [], byClientId: new Map(), dropAcks: false, pageSize: 500, made: 0 }
  const history = (room) => {
    if (!state.rooms.has(room)) state.rooms.set(room, [])
    return state.rooms.get(room)
  }
  // What join acks hand: the shape of a server from before key epochs
  // (no `epoch`), unless a test sets keys of its own.
  state.keys = [{ id: 1, key: KEY_B64 }]
  // `epoch` set: the Message carries it, sealed under `key` (that epoch's room key).
  state.store = async (room, sender, text, { epoch, key = KEY } = {}) => {
    // Sealed, then numbered and kept in one step, as the servers do: a
    // join meanwhile never reads a message without its envelope.
    const id = `id-${room}-${++state.made}`
    const message = await seal(room, id, sender, text, 1, key)
    const list = history(room)
    const msg = { id, room, seq: list.length + 1, sender, ts: Date.now(), keyId: 1 }
    if (epoch !== undefined) msg.epoch = epoch
    msg.message = message
    list.push(msg)
    return msg
  }
  state.refreshes = []
  state.expiredSent = 0
  io.use((socket, next) => {
    const { token } = socket.handshake.auth
    if (token && !(expOf(token) > Date.now())) return next(new Error('UNAUTHORIZED: token expired'))
    next()
  })
  io.on('connection', (socket) => {
    const { token } = socket.handshake.auth
    const sender = token ? JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).sub : socket.handshake.auth.name || 'guest'
    // The h/authz protocol: `session expired` at exp, then a disconnect, unless refreshed.
    let timer = null
    const arm = (t) => {
      clearTimeout(timer)
      if (t) timer = setTimeout(() => {
        state.expiredSent++
        socket.emit('session expired', { code: 'UNAUTHORIZED', message: 'token expired' })
        socket.disconnect(true)
      }, expOf(t) - Date.now())
    }
    arm(token)
    socket.on('disconnect', () => clearTimeout(timer))
    socket.on('refresh', (req, ack) => {
      state.refreshes.push(req.token)
      if (!(expOf(req.token) > Date.now())) return ack({ ok: false, error: { code: 'UNAUTHORIZED', message: 'token expired' } })
      arm(req.token)
      ack({ ok: true, expiresAt: expOf(req.token) })
    })
    const joined = new Set()
    socket.onAny((event, payload) => state.events.push({ event, payload, sid: socket.id }))
    socket.on('join', async (req, ack) => {
      if (state.beforeJoin) {
        const error = await state.beforeJoin(req)
        if (error) return ack({ ok: false, error })
      }
      const list = history(req.room)
      joined.add(req.room)
      socket.join(req.room)
      const missed = req.since === undefined ? list.slice(-50) : list.filter((m) => m.seq > req.since).slice(0, state.pageSize)
      ack({ ok: true, room: req.room, latestSeq: list.length, keys: state.keys, missed })
    })
    socket.on('leave', (req, ack) => {
      joined.delete(req.room)
      socket.leave(req.room)
      ack({ ok: true })
    })
    socket.on('chat message', async (req, ack) => {
      if (!joined.has(req.room)) return ack({ ok: false, error: { code: 'FORBIDDEN', message: 'join the room before sending to it' } })
      if (req.message.length > 100) return ack({ ok: false, error: { code: 'TOO_LARGE', message: 'too large' } })
      if (state.refuseOnce && state.refuseOnce.has(req.message)) {
        const code = state.refuseOnce.get(req.message)
        state.refuseOnce.delete(req.message)
        return ack({ ok: false, error: { code, message: 'try again' } })
      }
      let msg = state.byClientId.get(req.clientId)
      if (!msg) {
        msg = await state.store(req.room, sender, req.message)
        state.byClientId.set(req.clientId, msg)
        io.to(req.room).emit('chat message', msg)
      }
      if (!state.dropAcks) ack({ ok: true, id: msg.id, seq: msg.seq, ts: msg.ts })
    })
  })
  await new Promise((r) => httpServer.listen(0, '127.0.0.1', r))
  state.io = io
  state.url = `http://127.0.0.1:${httpServer.address().port}`
  state.close = () => new Promise((r) => io.close(() => r()))
  open.push(state.close)
  return state
}

/** An unsigned token with the claims the SDK reads (the fake server does not check signatures). */
function token(sub, ttlMs) {
  const now = Date.now()
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url')
  return `${b64({ alg: 'HS256' })}.${b64({ sub, iat: Math.floor(now / 1000), exp: (now + ttlMs) / 1000 })}.sig`
}

function expOf(t) {
  try {
    return JSON.parse(Buffer.from(String(t).split('.')[1], 'base64url')).exp * 1000
  } catch {
    return 0
  }
}

function client(url, extra = {}) {
  const c = connect({ url, ...(extra.token ? {} : { name: 'ann' }), ackTimeout: 500, reconnectionDelayMax: 200, ...extra })
  c.seen = []
  c.on('message', (m) => c.seen.push(m))
  open.push(async () => c.close())
  return c
}

async function until(predicate, what, ms = 5000) {
  const deadline = Date.now() + ms
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

test('clientIds are UUID v7: the send time first, so ids sort as they were made (the server indexes them)', () => {
  const { messageId } = require('../client/sdk/crypto')
  const now = Date.UTC(2026, 11, 2, 13, 30)
  const id = messageId(now)
  assert.match(id, UUID_V7)
  assert.equal(parseInt(id.replace(/-/g, '').slice(0, 12), 16), now)
  // One millisecond later sorts after, whatever the random bits.
  for (let i = 0; i < 200; i++) assert.ok(messageId(now) < messageId(now + 1))
  // Within one millisecond the 74 random bits keep them apart.
  const same = new Set(Array.from({ length: 1000 }, () => messageId(now)))
  assert.equal(same.size, 1000)
  assert.match(messageId(), UUID_V7)
})

test('a send resolves with its ack; the sender sees its own message once, opened and marked own', async () => {
  const server = await fakeServer()
  const ann = client(server.url)
  await ann.join('r')
  const ack = await ann.send('r', 'hello')
  assert.equal(ack.seq, 1)
  assert.match(ack.clientId, UUID_V7)
  await until(() => ann.seen.length === 1, 'own message')
  assert.equal(ann.seen[0].text, 'hello')
  assert.equal(ann.seen[0].own, true)
  assert.equal(ann.seen[0].error, null)
  // A server from before key epochs: its keys and messages are epoch 0.
  assert.equal(ann.seen[0].epoch, 0)
})

test('a gap in the live stream is filled by a catch-up, in seq order, nothing twice', async () => {
  const server = await fakeServer()
  for (let i = 1; i <= 3; i++) await server.store('r', 'bob', `m${i}`)
  const ann = client(server.url)
  await ann.join('r')
  await until(() => ann.seen.length === 3, 'history')
  // Stored 4 and 5, but only 5 reaches the client live.
  await server.store('r', 'bob', 'm4')
  const m5 = await server.store('r', 'bob', 'm5')
  server.io.to('r').emit('chat message', m5)
  await until(() => ann.seen.length === 5, 'catch-up')
  assert.deepEqual(ann.seen.map((m) => m.text), ['m1', 'm2', 'm3', 'm4', 'm5'])
  // The live duplicate of an already shown message is ignored.
  server.io.to('r').emit('chat message', m5)
  await new Promise((r) => setTimeout(r, 100))
  assert.equal(ann.seen.length, 5)
  const joins = server.events.filter((e) => e.event === 'join')
  assert.deepEqual(joins.at(-1).payload, { room: 'r', since: 3 })
})

test('a long gap is read page by page with since', async () => {
  const server = await fakeServer()
  server.pageSize = 7
  const ann = client(server.url)
  await ann.join('r', { since: 0 })
  for (let i = 1; i <= 30; i++) await server.store('r', 'bob', `m${i}`)
  // Only the last reaches the client live.
  server.io.to('r').emit('chat message', server.rooms.get('r')[29])
  await until(() => ann.seen.length === 30, 'all pages')
  assert.deepEqual(ann.seen.map((m) => m.seq), Array.from({ length: 30 }, (_, i) => i + 1))
  assert.ok(server.events.filter((e) => e.event === 'join').length >= 5, 'read in pages of 7')
})

test('after a reconnect a pending message is resent only after its room is joined again', async () => {
  const server = await fakeServer()
  server.dropAcks = true // stored, but the ack is lost
  const ann = client(server.url)
  await ann.join('r')
  const sent = ann.send('r', 'once')
  await until(() => server.rooms.get('r').length === 1, 'stored')
  server.dropAcks = false
  for (const s of await server.io.fetchSockets()) s.disconnect(true)
  const ack = await sent
  assert.equal(ack.seq, 1)
  assert.equal(server.rooms.get('r').length, 1, 'stored once')
  // On every connection, the join of the room comes before any send to it.
  const bySocket = new Map()
  for (const e of server.events) {
    if (!bySocket.has(e.sid)) bySocket.set(e.sid, [])
    bySocket.get(e.sid).push(e.event)
  }
  for (const events of bySocket.values()) {
    const firstSend = events.indexOf('chat message')
    if (firstSend >= 0) assert.ok(events.indexOf('join') >= 0 && events.indexOf('join') < firstSend, events.join(','))
  }
  assert.ok(bySocket.size >= 2, 'it reconnected')
  await until(() => ann.seen.length === 1, 'shown')
  await new Promise((r) => setTimeout(r, 100))
  assert.equal(ann.seen.length, 1, 'shown once')
})

test('messages that do not open are reported with a code, never dropped', async () => {
  const server = await fakeServer()
  const ann = client(server.url)
  await ann.join('r')
  const other = webcrypto.getRandomValues(new Uint8Array(32))
  const list = server.rooms.get('r')
  const unknownKey = { id: 'x1', room: 'r', seq: 1, sender: 'bob', ts: 1, keyId: 9, message: await seal('r', 'x1', 'bob', 'a', 9) }
  const wrongKey = { id: 'x2', room: 'r', seq: 2, sender: 'bob', ts: 1, keyId: 1, message: await seal('r', 'x2', 'bob', 'b', 1, other) }
  const moved = { id: 'x3', room: 'r', seq: 3, sender: 'bob', ts: 1, keyId: 1, message: await seal('elsewhere', 'x3', 'bob', 'c') }
  const garbage = { id: 'x4', room: 'r', seq: 4, sender: 'bob', ts: 1, keyId: 1, message: 'AQE=' }
  list.push(unknownKey, wrongKey, moved, garbage)
  for (const m of list) server.io.to('r').emit('chat message', m)
  await until(() => ann.seen.length === 4, 'all four reported')
  assert.deepEqual(
    ann.seen.map((m) => [m.seq, m.text, m.error && m.error.code]),
    [
      [1, null, 'NO_KEY'],
      [2, null, 'BAD_TAG'],
      [3, null, 'BAD_TAG'],
      [4, null, 'BAD_ENVELOPE'],
    ],
  )
})

test('offline sends are queued (bounded), reported pending, then sent; a refused one fails with its code', async () => {
  const server = await fakeServer()
  const ann = client(server.url, { outboxLimit: 2 })
  const states = []
  ann.on('outbox', (e) => states.push(`${e.text}:${e.state}${e.error ? ':' + e.error.code : ''}`))
  await ann.join('r')
  ann.socket.disconnect() // offline, as after a network loss
  const a = ann.send('r', 'a')
  const b = ann.send('r', 'b')
  await assert.rejects(ann.send('r', 'c'), (e) => e instanceof ChatError && e.code === 'QUEUE_FULL')
  assert.deepEqual(ann.pending().map((p) => [p.text, p.state]), [
    ['a', 'pending'],
    ['b', 'pending'],
  ])
  ann.socket.connect()
  assert.equal((await a).seq, 1)
  assert.equal((await b).seq, 2)
  await assert.rejects(ann.send('r', 'x'.repeat(101)), (e) => e.code === 'TOO_LARGE')
  const failed = ann.pending()
  assert.equal(failed.length, 1)
  assert.equal(failed[0].state, 'failed')
  await assert.rejects(ann.retry(failed[0].clientId), (e) => e.code === 'TOO_LARGE')
  ann.discard(failed[0].clientId)
  assert.deepEqual(ann.pending(), [])
  assert.deepEqual(states, [
    'a:pending',
    'b:pending',
    'c:failed:QUEUE_FULL',
    'a:sent',
    'b:sent',
    `${'x'.repeat(101)}:pending`,
    `${'x'.repeat(101)}:failed:TOO_LARGE`,
    `${'x'.repeat(101)}:pending`,
    `${'x'.repeat(101)}:failed:TOO_LARGE`,
    `${'x'.repeat(101)}:discarded:TOO_LARGE`,
  ])
})

test('sending to a room not joined fails at once with NOT_JOINED', async () => {
  const server = await fakeServer()
  const ann = client(server.url)
  await assert.rejects(ann.send('nowhere', 'x'), (e) => e.code === 'NOT_JOINED')
})

test('status goes connecting → online → offline (with the reason) → online', async () => {
  const server = await fakeServer()
  const ann = client(server.url)
  const seen = []
  ann.on('status', (s) => seen.push(s.state))
  await ann.join('r')
  await until(() => ann.status.state === 'online', 'online')
  const reasons = []
  ann.on('status', (s) => s.state === 'offline' && reasons.push(s.reason))
  for (const s of await server.io.fetchSockets()) s.disconnect(true)
  await until(() => reasons.length > 0, 'offline')
  assert.equal(reasons[0], 'io server disconnect')
  await until(() => ann.status.state === 'online', 'online again')
  assert.ok(seen.includes('offline') && seen.at(-1) === 'online', seen.join(','))
})

test('with getToken the session is refreshed in place before exp: never expired, never offline', async () => {
  const server = await fakeServer()
  let calls = 0
  // Tokens of 4 s: refreshed 2 s before exp, a margin a loaded machine keeps.
  const ann = client(server.url, {
    token: token('ann', 4000),
    getToken: async () => {
      calls++
      return token('ann', 4000)
    },
  })
  const states = []
  ann.on('status', (s) => states.push(s.state))
  await ann.join('r')
  for (let i = 1; i <= 12; i++) {
    await ann.send('r', `m${i}`)
    await new Promise((r) => setTimeout(r, 500))
  }
  assert.ok(calls >= 2, `getToken called ${calls} times`)
  assert.equal(server.refreshes.length, calls, 'each new token given to the server with refresh')
  assert.equal(server.expiredSent, 0)
  assert.deepEqual(states, ['connecting', 'online'])
  await until(() => ann.seen.length === 12, 'all shown')
})

test('without getToken: "session expired" gives the expired state; sends wait; setToken sends them once', async () => {
  const server = await fakeServer()
  const ann = client(server.url, { token: token('ann', 800) })
  await ann.join('r')
  await until(() => ann.status.state === 'expired', 'expired')
  assert.deepEqual(ann.status, { state: 'expired', reason: 'token expired', code: 'UNAUTHORIZED' })
  let settled = false
  const sent = ann.send('r', 'after expiry').finally(() => {
    settled = true
  })
  await new Promise((r) => setTimeout(r, 500))
  assert.equal(settled, false)
  assert.equal(ann.pending()[0].state, 'pending')
  ann.setToken(token('ann', 60000))
  assert.equal((await sent).seq, 1)
  assert.equal(server.rooms.get('r').length, 1)
  await until(() => ann.seen.length === 1 && ann.seen[0].own, 'shown as own')
})

test('history without a token pages with join { since }, even when the server cuts pages short', async () => {
  const server = await fakeServer()
  for (let i = 1; i <= 60; i++) await server.store('r', 'bob', `m${i}`)
  server.pageSize = 7
  const ann = client(server.url)
  await ann.join('r')
  await until(() => ann.seen.length === 50, 'latest 50')
  const older = await ann.history('r', { before: 30, limit: 20 })
  assert.deepEqual(
    older.map((m) => m.seq),
    Array.from({ length: 20 }, (_, i) => 10 + i),
  )
  assert.ok(older.every((m) => m.text === `m${m.seq}`))
  assert.deepEqual(await ann.history('r', { before: 1 }), [])
})

test('RATE_LIMITED and UNAVAILABLE are retried with the same clientId: stored once each', async () => {
  const server = await fakeServer()
  server.refuseOnce = new Map([
    ['m2', 'RATE_LIMITED'],
    ['m4', 'UNAVAILABLE'],
  ])
  const ann = client(server.url)
  const seen = []
  ann.on('outbox', (e) => seen.push(`${e.text}:${e.state}${e.error ? ':' + e.error.code : ''}`))
  await ann.join('r')
  const acks = await Promise.all(['m1', 'm2', 'm3', 'm4', 'm5'].map((t) => ann.send('r', t)))
  assert.equal(new Set(acks.map((a) => a.seq)).size, 5)
  assert.equal(server.rooms.get('r').length, 5, 'stored once each')
  assert.deepEqual(
    acks.map((a) => a.seq),
    [1, 2, 3, 4, 5],
    'in the order written: a retried message is not overtaken',
  )
  assert.ok(seen.includes('m2:pending:RATE_LIMITED') && seen.includes('m4:pending:UNAVAILABLE'), seen.join(' '))
  const m2 = server.events.filter((e) => e.event === 'chat message' && e.payload.message === 'm2')
  assert.equal(m2.length, 2)
  assert.equal(m2[0].payload.clientId, m2[1].payload.clientId, 'the same clientId again')
})

test('catch-ups: at most 4 in flight; RATE_LIMITED waits the hint and joins again; no room is lost', async () => {
  const server = await fakeServer()
  let inFlight = 0
  let most = 0
  const refusedAt = new Map()
  const retriedAfter = []
  server.beforeJoin = async (req) => {
    if (req.since === undefined) return null
    inFlight++
    most = Math.max(most, inFlight)
    await new Promise((r) => setTimeout(r, 30))
    inFlight--
    if (!refusedAt.has(req.room)) {
      refusedAt.set(req.room, Date.now())
      return { code: 'RATE_LIMITED', message: 'too many catch-ups', retryAfterMs: 200 }
    }
    retriedAfter.push(Date.now() - refusedAt.get(req.room))
    return null
  }
  const ann = client(server.url)
  const failed = []
  ann.on('room error', (e) => failed.push(e))
  const rooms = Array.from({ length: 12 }, (_, i) => `r${i}`)
  await Promise.all(rooms.map((r) => ann.join(r, { since: 0 })))
  assert.deepEqual(failed, [])
  assert.deepEqual(ann.joinedRooms().sort(), [...rooms].sort())
  assert.ok(most <= 4, `${most} catch-ups in flight at once`)
  assert.equal(retriedAfter.length, 12, 'each room joined again once')
  assert.ok(retriedAfter.every((ms) => ms >= 190), `retried after the hint: ${retriedAfter.join(' ')}`)
})

test('leave: no more messages from the room, its waiting sends fail with LEFT, sending again needs a join', async () => {
  const server = await fakeServer()
  const ann = client(server.url)
  await ann.join('r')
  await ann.send('r', 'one')
  await until(() => ann.seen.length === 1, 'shown')
  ann.socket.disconnect()
  const waiting = ann.send('r', 'never')
  await ann.leave('r')
  await assert.rejects(waiting, (e) => e.code === 'LEFT')
  ann.socket.connect()
  await until(() => ann.status.state === 'online', 'online')
  const m2 = await server.store('r', 'bob', 'after leaving')
  server.io.emit('chat message', m2) // even if it reached the socket
  await new Promise((r) => setTimeout(r, 200))
  assert.equal(ann.seen.length, 1)
  assert.deepEqual(ann.joinedRooms(), [])
  await assert.rejects(ann.send('r', 'x'), (e) => e.code === 'NOT_JOINED')
  assert.ok(!server.events.some((e) => e.event === 'join' && e.sid !== server.events[0].sid), 'not joined again after the reconnect')
})

test('the test derives room keys as the engine does (the shared vectors, epochs 0 to u32::MAX)', () => {
  const vectors = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'tests', 'vectors', 'envelope-v1.json'), 'utf8'))
  const epochs = new Set()
  for (const c of vectors.cases) {
    assert.equal(b64(roomKey(Buffer.from(c.master_key, 'base64'), c.room, c.epoch)), c.room_key, c.name)
    epochs.add(c.epoch)
  }
  assert.ok(epochs.has(0) && epochs.has(1) && epochs.has(0xffffffff), [...epochs].join(' '))
})

/** Room keys of epochs 0, 1 and 2 of room `r` under one master key. */
function epochKeys() {
  const master = webcrypto.getRandomValues(new Uint8Array(32))
  return [0, 1, 2].map((epoch) => ({ id: 1, epoch, raw: roomKey(master, 'r', epoch), key: b64(roomKey(master, 'r', epoch)) }))
}
const handed = (...keys) => keys.map(({ id, epoch, key }) => ({ id, epoch, key }))
const shown = (c) => c.seen.map((m) => [m.seq, m.epoch, m.text, m.error && m.error.code])
const joinsOf = (server) => server.events.filter((e) => e.event === 'join').map((e) => e.payload)

test('keys of two epochs: each message opens with its epoch\'s key; the epoch is authenticated', async () => {
  const server = await fakeServer()
  const [k0, k1] = epochKeys()
  server.keys = handed(k0, k1)
  await server.store('r', 'bob', 'epoch 0', { epoch: 0, key: k0.raw })
  await server.store('r', 'bob', 'epoch 1', { epoch: 1, key: k1.raw })
  // No `epoch` (a server from before epochs): epoch 0.
  await server.store('r', 'bob', 'no epoch field', { key: k0.raw })
  // Sealed under epoch 1's key but said to be epoch 0: it must not open.
  await server.store('r', 'bob', 'moved epoch', { epoch: 0, key: k1.raw })
  const ann = client(server.url)
  const keyEvents = []
  ann.on('room key', (e) => keyEvents.push(e))
  await ann.join('r')
  await until(() => ann.seen.length === 4, 'four messages')
  assert.deepEqual(shown(ann), [
    [1, 0, 'epoch 0', null],
    [2, 1, 'epoch 1', null],
    [3, 0, 'no epoch field', null],
    [4, 0, null, 'BAD_TAG'],
  ])
  assert.deepEqual(keyEvents, [
    { room: 'r', keyId: 1, epoch: 0 },
    { room: 'r', keyId: 1, epoch: 1 },
  ])
  assert.equal(joinsOf(server).length, 1, 'every key came with the join: no rejoin')
})

test('a message of an epoch with no key yet is held, the room joined again, and shown once the ack hands the key', async () => {
  const server = await fakeServer()
  const [k0, k1] = epochKeys()
  server.keys = handed(k0)
  const ann = client(server.url)
  const keyEvents = []
  ann.on('room key', (e) => keyEvents.push(e))
  await ann.join('r')
  server.io.to('r').emit('chat message', await server.store('r', 'bob', 'first', { epoch: 0, key: k0.raw }))
  await until(() => ann.seen.length === 1, 'the first message')
  // The room starts epoch 1; its `room key` event has not come (it raced
  // the message, or was lost with a connection).
  server.keys = handed(k0, k1)
  server.io.to('r').emit('chat message', await server.store('r', 'bob', 'second', { epoch: 1, key: k1.raw }))
  server.io.to('r').emit('chat message', await server.store('r', 'bob', 'third', { epoch: 1, key: k1.raw }))
  await until(() => ann.seen.length === 3, 'the epoch 1 messages')
  assert.deepEqual(shown(ann), [
    [1, 0, 'first', null],
    [2, 1, 'second', null],
    [3, 1, 'third', null],
  ])
  assert.deepEqual(keyEvents, [
    { room: 'r', keyId: 1, epoch: 0 },
    { room: 'r', keyId: 1, epoch: 1 },
  ])
  // Joined again from the last message shown, as after a reconnect (once
  // more if the third came while the first rejoin was on its way).
  const rejoins = joinsOf(server).slice(1)
  assert.deepEqual(rejoins[0], { room: 'r', since: 1 })
  assert.ok(rejoins.length <= 2, JSON.stringify(rejoins))
})

test('a key the join again does not hand: NO_KEY, after one rejoin, never dropped; a `room key` event opens the next', async () => {
  const server = await fakeServer()
  const [k0, , k2] = epochKeys()
  server.keys = handed(k0)
  const ann = client(server.url)
  await ann.join('r')
  for (const text of ['a', 'b', 'c']) server.io.to('r').emit('chat message', await server.store('r', 'bob', text, { epoch: 2, key: k2.raw }))
  await until(() => ann.seen.length === 3, 'three reported')
  assert.deepEqual(shown(ann), [
    [1, 2, null, 'NO_KEY'],
    [2, 2, null, 'NO_KEY'],
    [3, 2, null, 'NO_KEY'],
  ])
  assert.ok(ann.seen.every((m) => /epoch 2/.test(m.error.message)), ann.seen[0].error.message)
  // One rejoin for the missing key, not one per message.
  const rejoins = joinsOf(server).length - 1
  assert.ok(rejoins >= 1 && rejoins <= 2, `${rejoins} rejoins`)
  // The join's answer is remembered: the next message under that key is reported at once.
  server.io.to('r').emit('chat message', await server.store('r', 'bob', 'd', { epoch: 2, key: k2.raw }))
  await until(() => ann.seen.length === 4, 'the fourth')
  assert.deepEqual(shown(ann)[3], [4, 2, null, 'NO_KEY'])
  assert.equal(joinsOf(server).length - 1, rejoins, 'no rejoin for a key the last join did not hand')
  server.io.to('r').emit('room key', { room: 'r', key: { id: 1, epoch: 2, key: k2.key } })
  server.io.to('r').emit('chat message', await server.store('r', 'bob', 'e', { epoch: 2, key: k2.raw }))
  await until(() => ann.seen.length === 5, 'the fifth')
  assert.deepEqual(shown(ann)[4], [5, 2, 'e', null])
  assert.equal(joinsOf(server).length - 1, rejoins, 'the event brought the key: no rejoin')
})

test('an epoch that is not an integer 0 to 4294967295 makes the message unreadable, without a rejoin', async () => {
  const server = await fakeServer()
  const [k0] = epochKeys()
  server.keys = handed(k0)
  const ann = client(server.url)
  await ann.join('r')
  const bad = [-1, 1.5, 2 ** 32, '1', null, {}]
  for (const epoch of bad) server.io.to('r').emit('chat message', await server.store('r', 'bob', 'x', { epoch, key: k0.raw }))
  await until(() => ann.seen.length === bad.length, 'all reported')
  assert.deepEqual(
    shown(ann),
    bad.map((_, i) => [i + 1, null, null, 'BAD_ENVELOPE']),
  )
  assert.equal(joinsOf(server).length, 1)
})

test('join acks: keys without an epoch are epoch 0; malformed key entries are skipped', async () => {
  const server = await fakeServer()
  const [k0, k1] = epochKeys()
  server.keys = [
    { id: 1, key: k0.key },
    { id: 1, epoch: -1, key: k1.key },
    { id: 1, epoch: '1', key: k1.key },
    { id: 2 ** 32, epoch: 1, key: k1.key },
    { id: 1, epoch: 1, key: 'AAAA' },
    null,
  ]
  const ann = client(server.url)
  const keyEvents = []
  ann.on('room key', (e) => keyEvents.push(e))
  await ann.join('r')
  assert.deepEqual(keyEvents, [{ room: 'r', keyId: 1, epoch: 0 }])
})

test('history over HTTP: a message of an epoch this client has no key for makes it join again, and it opens', async () => {
  const server = await fakeServer()
  const [k0, k1] = epochKeys()
  server.keys = handed(k0)
  for (let i = 1; i <= 3; i++) await server.store('r', 'bob', `old ${i}`, { epoch: 0, key: k0.raw })
  const ann = client(server.url, { token: token('ann', 60000) })
  await ann.join('r', { since: 3 })
  // Sealed under epoch 1 while ann was away; ann missed its `room key` event.
  const list = server.rooms.get('r')
  const m2 = list[1]
  m2.epoch = 1
  m2.message = await seal('r', m2.id, 'bob', 'old 2, epoch 1', 1, k1.raw)
  server.keys = handed(k0, k1)
  const older = await ann.history('r', { before: 4, limit: 3 })
  assert.deepEqual(
    older.map((m) => [m.seq, m.epoch, m.text, m.error]),
    [
      [1, 0, 'old 1', null],
      [2, 1, 'old 2, epoch 1', null],
      [3, 0, 'old 3', null],
    ],
  )
  assert.deepEqual(joinsOf(server).at(-1), { room: 'r', since: 3 })
  // Without the key anywhere it is reported, not dropped.
  server.keys = handed(k0)
  const bob = client(server.url, { token: token('bob', 60000) })
  await bob.join('r', { since: 3 })
  assert.deepEqual(
    (await bob.history('r', { before: 4, limit: 3 })).map((m) => [m.seq, m.text, m.error && m.error.code]),
    [
      [1, 'old 1', null],
      [2, null, 'NO_KEY'],
      [3, 'old 3', null],
    ],
  )
})

test('a message whose key no join ack covers (a server that never stored it) is reported after a few rejoins, not waited on forever', async () => {
  const server = await fakeServer()
  const [k0, k1] = epochKeys()
  server.keys = handed(k0)
  const ann = client(server.url)
  await ann.join('r')
  // Broadcast, never stored: every join says latestSeq 0 and misses nothing.
  const ghost = { id: 'ghost', room: 'r', seq: 1, sender: 'bob', ts: 1, keyId: 1, epoch: 1, message: await seal('r', 'ghost', 'bob', 'x', 1, k1.raw) }
  server.io.to('r').emit('chat message', ghost)
  await until(() => ann.seen.length === 1, 'reported')
  assert.deepEqual(shown(ann), [[1, 1, null, 'NO_KEY']])
  const rejoins = joinsOf(server).length - 1
  assert.ok(rejoins >= 1 && rejoins <= 4, `${rejoins} rejoins`)
})

test('RoomKeys: at most KEYS_PER_ROOM_MAX keys per room, whatever a server sends', async () => {
  const { RoomKeys, KEYS_PER_ROOM_MAX } = require('../client/sdk/envelope')
  const keys = new RoomKeys()
  const entries = Array.from({ length: KEYS_PER_ROOM_MAX + 10 }, (_, i) => ({ id: 1, epoch: i, key: KEY_B64 }))
  const added = await keys.add('r', entries)
  assert.equal(added.length, KEYS_PER_ROOM_MAX)
  assert.ok(keys.has('r', 1, KEYS_PER_ROOM_MAX - 1))
  assert.ok(!keys.has('r', 1, KEYS_PER_ROOM_MAX))
  assert.deepEqual(await keys.add('r', [{ id: 2, epoch: 0, key: KEY_B64 }]), [])
  // Another room has its own budget.
  assert.deepEqual(await keys.add('s', [{ id: 2, epoch: 0, key: KEY_B64 }]), [{ keyId: 2, epoch: 0 }])
})
