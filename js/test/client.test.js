'use strict'
// chatseal/client against a scripted Socket.IO server: the cases a real
// server rarely produces on demand (a gap in the live stream, an envelope
// that does not open, an ack that never comes, the order of events after a
// reconnect). The same SDK against both real servers: tests/sdk.
const { test, afterEach } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { webcrypto } = require('node:crypto')
const { Server } = require('socket.io')
const { connect, ChatError } = require('../client')

const KEY = webcrypto.getRandomValues(new Uint8Array(32))
const KEY_B64 = Buffer.from(KEY).toString('base64')
const open = []

afterEach(async () => {
  while (open.length) await open.pop()()
})

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
  const state = { rooms: new Map(), events: [], byClientId: new Map(), dropAcks: false, pageSize: 500 }
  const history = (room) => {
    if (!state.rooms.has(room)) state.rooms.set(room, [])
    return state.rooms.get(room)
  }
  state.store = async (room, sender, text) => {
    const list = history(room)
    const msg = { id: `id-${room}-${list.length + 1}`, room, seq: list.length + 1, sender, ts: Date.now(), keyId: 1 }
    list.push(msg)
    msg.message = await seal(room, msg.id, sender, text)
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
      ack({ ok: true, room: req.room, latestSeq: list.length, keys: [{ id: 1, key: KEY_B64 }], missed })
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

test('a send resolves with its ack; the sender sees its own message once, opened and marked own', async () => {
  const server = await fakeServer()
  const ann = client(server.url)
  await ann.join('r')
  const ack = await ann.send('r', 'hello')
  assert.equal(ack.seq, 1)
  assert.match(ack.clientId, /^[0-9a-f-]{36}$/)
  await until(() => ann.seen.length === 1, 'own message')
  assert.equal(ann.seen[0].text, 'hello')
  assert.equal(ann.seen[0].own, true)
  assert.equal(ann.seen[0].error, null)
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
