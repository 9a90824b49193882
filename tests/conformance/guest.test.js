'use strict'
// The protocol of DESIGN §3 in guest mode, identical for both servers.
// CHATSEAL_TARGET=rust|node picks the server; run.js runs it for each.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { start, serviceToken, LIMITS } = require('./lib/servers')
const { connect, request, until, sleep, openMessage } = require('./lib/client')

const TARGET = process.env.CHATSEAL_TARGET || 'rust'
// The Rust servers of this file share one keyring: on rust-pg they share one
// database, and a server refuses a keyring that cannot open what is stored.
const KEY_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'chatseal-guest-keys-'))
const KEYS = TARGET.startsWith('rust') ? { CHATSEAL_KEYRING_FILE: path.join(KEY_DIR, 'keyring.json') } : {}
if (KEYS.CHATSEAL_KEYRING_FILE) {
  const key = crypto.randomBytes(32).toString('base64')
  fs.writeFileSync(KEYS.CHATSEAL_KEYRING_FILE, JSON.stringify({ primary: 1, keys: [{ id: 1, key }] }), { mode: 0o600 })
}
let server
const sockets = []

before(async () => {
  server = await start(TARGET, { env: KEYS })
})

after(async () => {
  for (const s of sockets) s.close()
  await server.stop()
  fs.rmSync(KEY_DIR, { recursive: true, force: true })
})

async function guest(name) {
  const s = await connect(server.url, { name })
  sockets.push(s)
  return s
}

let roomCounter = 0
const freshRoom = (label) => `${label}-${process.pid}-${++roomCounter}`

test('join acks with room keys, the latest seq and what was missed', async () => {
  const ann = await guest('ann')
  const room = freshRoom('keys')
  const ack = await request(ann, 'join', { room })
  assert.equal(ack.ok, true)
  assert.equal(ack.room, room)
  assert.ok(Array.isArray(ack.keys) && ack.keys.length >= 1)
  // A guest room never starts a new epoch: it is at 0, and so are its keys.
  assert.equal(ack.epoch, 0)
  for (const k of ack.keys) {
    assert.deepEqual(Object.keys(k).sort(), ['epoch', 'id', 'key'])
    assert.equal(typeof k.id, 'number')
    assert.equal(k.epoch, 0)
    assert.equal(Buffer.from(k.key, 'base64').length, 32)
  }
  assert.equal(ack.latestSeq, 0)
  assert.deepEqual(ack.missed, [])
  assert.ok(typeof ack.historyId === 'string' && ack.historyId.length >= 1 && ack.historyId.length <= 64)
  const again = await request(ann, 'join', { room: freshRoom('keys') })
  assert.equal(again.historyId, ack.historyId, 'one history for every room of a server')
})

test('a message is acked, broadcast to the room only, and opens with the room key', async () => {
  const room = freshRoom('bcast')
  const [ann, bob, eve] = [await guest('ann'), await guest('bob'), await guest('eve')]
  const { keys } = await request(ann, 'join', { room })
  await request(bob, 'join', { room })
  await request(eve, 'join', { room: freshRoom('elsewhere') })

  const before = Date.now()
  const ack = await request(ann, 'chat message', { message: 'hello bob', room })
  assert.equal(ack.ok, true)
  assert.equal(typeof ack.id, 'string')
  assert.equal(ack.seq, 1)
  assert.ok(ack.ts >= before - 5000 && ack.ts <= Date.now() + 5000)

  await until(() => bob.received.some((m) => m.id === ack.id), 5000, 'delivery to bob')
  const msg = bob.received.find((m) => m.id === ack.id)
  assert.deepEqual(Object.keys(msg).sort(), ['epoch', 'id', 'keyId', 'message', 'room', 'sender', 'seq', 'ts'])
  assert.equal(msg.epoch, 0)
  assert.equal(msg.room, room)
  assert.equal(msg.seq, 1)
  // A guest's sender is marked with `~`: no account name has it.
  assert.equal(msg.sender, '~ann')
  assert.equal(msg.ts, ack.ts)
  assert.equal(await openMessage(keys, msg), 'hello bob')
  assert.ok(!msg.message.includes('hello'))

  // The sender gets its own message too; eve (another room) gets nothing.
  await until(() => ann.received.some((m) => m.id === ack.id), 5000, 'echo to ann')
  await sleep(200)
  assert.equal(eve.received.filter((m) => m.room === room).length, 0)
})

test('the sender gets its ack before its own copy, and matches the copy by the ack\'s id', async () => {
  const room = freshRoom('ackfirst')
  const ann = await guest('ann')
  await request(ann, 'join', { room })
  const events = []
  ann.on('chat message', (m) => events.push(`copy ${m.id}`))
  const n = 20
  // An ack callback runs as its packet is read (a promise's .then would run
  // later, after packets read in the same tick), so `events` is wire order.
  const acks = await Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        new Promise((resolve, reject) =>
          ann.timeout(5000).emit('chat message', { message: `m${i}`, room, clientId: `ack-first-${i}` }, (err, ack) => {
            if (err) return reject(err)
            events.push(`ack ${ack.id}`)
            resolve(ack)
          }),
        ),
    ),
  )
  await until(() => acks.every((a) => events.includes(`copy ${a.id}`)), 5000, 'every copy')
  for (const a of acks) {
    assert.equal(a.ok, true)
    assert.ok(events.indexOf(`ack ${a.id}`) < events.indexOf(`copy ${a.id}`), `ack of seq ${a.seq} came after its copy`)
  }
})

test('the context binds a message to its room, id and sender', async () => {
  const room = freshRoom('ctx')
  const ann = await guest('ann')
  const { keys } = await request(ann, 'join', { room })
  const ack = await request(ann, 'chat message', { message: 'bound', room })
  await until(() => ann.received.some((m) => m.id === ack.id))
  const msg = ann.received.find((m) => m.id === ack.id)
  assert.equal(await openMessage(keys, msg), 'bound')
  // Re-attributed to another guest, or to the account of the same name, it does not open.
  for (const forged of [{ ...msg, sender: '~bob' }, { ...msg, sender: 'ann' }, { ...msg, id: 'other' }, { ...msg, room: 'lobby' }]) {
    await assert.rejects(openMessage(keys, forged))
  }
})

test('the tutorial client: no join, a bare { message } goes to the lobby', async () => {
  const ann = await guest('ann')
  const bob = await guest('bob')
  const ack = await request(ann, 'chat message', { message: 'hi lobby' })
  assert.equal(ack.ok, true)
  await until(() => bob.received.some((m) => m.id === ack.id), 5000, 'lobby delivery')
  const msg = bob.received.find((m) => m.id === ack.id)
  assert.equal(msg.room, 'lobby')
  const { keys } = await request(bob, 'join', { room: 'lobby' })
  assert.equal(await openMessage(keys, msg), 'hi lobby')
})

test('a burst from one client is stored and delivered in the order sent', async () => {
  const room = freshRoom('order')
  const ann = await guest('ann')
  const bob = await guest('bob')
  const { keys } = await request(ann, 'join', { room })
  await request(bob, 'join', { room })
  const n = 25 // within the burst allowance
  const acks = await Promise.all(
    Array.from({ length: n }, (_, i) => request(ann, 'chat message', { message: `m${i}`, room })),
  )
  assert.deepEqual(acks.map((a) => a.seq), Array.from({ length: n }, (_, i) => i + 1))
  await until(() => bob.received.filter((m) => m.room === room).length === n, 5000, 'all deliveries')
  const got = bob.received.filter((m) => m.room === room)
  assert.deepEqual(got.map((m) => m.seq), acks.map((a) => a.seq))
  const texts = await Promise.all(got.map((m) => openMessage(keys, m)))
  assert.deepEqual(texts, Array.from({ length: n }, (_, i) => `m${i}`))
})

test('a resend with the same clientId returns the first ack and is not broadcast twice', async () => {
  const room = freshRoom('dedup')
  const ann = await guest('ann')
  const bob = await guest('bob')
  await request(ann, 'join', { room })
  await request(bob, 'join', { room })
  const first = await request(ann, 'chat message', { message: 'once', room, clientId: 'c-1' })
  const again = await request(ann, 'chat message', { message: 'once', room, clientId: 'c-1' })
  assert.deepEqual(again, first)
  const other = await request(ann, 'chat message', { message: 'twice', room, clientId: 'c-2' })
  assert.equal(other.seq, first.seq + 1)
  await until(() => bob.received.some((m) => m.id === other.id))
  await sleep(100)
  assert.equal(bob.received.filter((m) => m.id === first.id).length, 1)
})

test('dedup is per room and sender: a clientId reused elsewhere is a new message, never another\'s ack', async () => {
  const [roomA, roomB] = [freshRoom('scope-a'), freshRoom('scope-b')]
  const ann = await guest('ann')
  const bob = await guest('bob')
  for (const s of [ann, bob]) {
    await request(s, 'join', { room: roomA })
    await request(s, 'join', { room: roomB })
  }
  const inA = await request(ann, 'chat message', { message: 'in a', room: roomA, clientId: 'shared-id' })
  const inB = await request(ann, 'chat message', { message: 'in b', room: roomB, clientId: 'shared-id' })
  const byBob = await request(bob, 'chat message', { message: 'bob in a', room: roomA, clientId: 'shared-id' })
  assert.ok(inA.ok && inB.ok && byBob.ok)
  assert.equal(new Set([inA.id, inB.id, byBob.id]).size, 3, 'three messages, three ids')
  assert.equal(inB.seq, 1)
  assert.equal(byBob.seq, 2)
  await until(() => [inB.id, byBob.id].every((id) => ann.received.some((m) => m.id === id)), 5000, 'both delivered')
  const got = (id) => ann.received.find((m) => m.id === id)
  assert.deepEqual([got(inB.id).room, got(inB.id).sender], [roomB, '~ann'])
  assert.deepEqual([got(byBob.id).room, got(byBob.id).sender], [roomA, '~bob'])
  // A real resend (same room, same sender) still gets the first ack.
  assert.deepEqual(await request(ann, 'chat message', { message: 'in b', room: roomB, clientId: 'shared-id' }), inB)
})

test('join with since returns what a reader missed, and a reconnect catches up', async () => {
  const room = freshRoom('since')
  const ann = await guest('ann')
  const { keys } = await request(ann, 'join', { room })
  for (let i = 1; i <= 3; i++) await request(ann, 'chat message', { message: `early ${i}`, room })

  let bob = await guest('bob')
  const first = await request(bob, 'join', { room, since: 0 })
  assert.equal(first.latestSeq, 3)
  assert.deepEqual(first.missed.map((m) => m.seq), [1, 2, 3])
  assert.deepEqual(first.missed.map((m) => m.epoch), [0, 0, 0], 'history keeps each message\'s epoch')
  assert.deepEqual(await Promise.all(first.missed.map((m) => openMessage(keys, m))), ['early 1', 'early 2', 'early 3'])

  bob.close()
  for (let i = 4; i <= 5; i++) await request(ann, 'chat message', { message: `late ${i}`, room })
  bob = await guest('bob')
  const caught = await request(bob, 'join', { room, since: first.latestSeq })
  assert.deepEqual(caught.missed.map((m) => m.seq), [4, 5])
  assert.equal(caught.latestSeq, 5)
  assert.equal(await openMessage(keys, caught.missed[1]), 'late 5')
  const none = await request(bob, 'join', { room, since: 5 })
  assert.deepEqual(none.missed, [])
})

test('after leave, a socket gets no more of the room', async () => {
  const room = freshRoom('leave')
  const ann = await guest('ann')
  const bob = await guest('bob')
  await request(ann, 'join', { room })
  await request(bob, 'join', { room })
  assert.deepEqual(await request(bob, 'leave', { room }), { ok: true })
  const ack = await request(ann, 'chat message', { message: 'gone?', room })
  await until(() => ann.received.some((m) => m.id === ack.id))
  await sleep(200)
  assert.equal(bob.received.filter((m) => m.room === room).length, 0)
  // Sending to a room one has left is refused.
  const refused = await request(bob, 'chat message', { message: 'x', room })
  assert.equal(refused.ok, false)
  assert.equal(refused.error.code, 'FORBIDDEN')
})

function assertError(ack, code) {
  assert.equal(ack.ok, false, JSON.stringify(ack))
  assert.equal(ack.error.code, code, JSON.stringify(ack))
  assert.equal(typeof ack.error.message, 'string')
}

test('bad payloads get an error ack with the right code, and the server keeps serving', async () => {
  const ann = await guest('ann')
  const cases = [
    ['join', {}, 'BAD_REQUEST'],
    ['join', { room: '' }, 'BAD_REQUEST'],
    ['join', { room: 'a\u0000b' }, 'BAD_REQUEST'],
    ['join', { room: 'x'.repeat(65) }, 'BAD_REQUEST'],
    // Lone surrogates: not Unicode, so not a room (they would all turn
    // into U+FFFD and share one room key).
    ['join', { room: 'a\ud800' }, 'BAD_REQUEST'],
    ['join', { room: 'a\udc00' }, 'BAD_REQUEST'],
    ['chat message', { message: 'x', room: 'b\udbff' }, 'BAD_REQUEST'],
    ['join', { room: 42 }, 'BAD_REQUEST'],
    ['join', { room: 'r', since: -1 }, 'BAD_REQUEST'],
    ['join', 'lobby', 'BAD_REQUEST'],
    // A JSON array is not an object, even where its items would fit the fields.
    ['join', ['lobby'], 'BAD_REQUEST'],
    ['join', ['lobby', 0], 'BAD_REQUEST'],
    ['leave', ['lobby'], 'BAD_REQUEST'],
    ['leave', {}, 'BAD_REQUEST'],
    ['chat message', { message: 5 }, 'BAD_REQUEST'],
    ['chat message', {}, 'BAD_REQUEST'],
    ['chat message', null, 'BAD_REQUEST'],
    ['chat message', [1, 2], 'BAD_REQUEST'],
    ['chat message', ['hi'], 'BAD_REQUEST'],
    ['chat message', ['hi', 'lobby', 'c-array'], 'BAD_REQUEST'],
    ['chat message', { message: 'x', sender: 'bob' }, 'BAD_REQUEST'],
    ['chat message', { message: 'x', room: 'never-joined' }, 'FORBIDDEN'],
    ['chat message', { message: 'x', clientId: '' }, 'BAD_REQUEST'],
    ['chat message', { message: 'x', clientId: 'c'.repeat(129) }, 'BAD_REQUEST'],
    ['chat message', { message: 'x'.repeat(LIMITS.maxMessageBytes + 1) }, 'TOO_LARGE'],
    ['no such event', {}, 'BAD_REQUEST'],
  ]
  for (const [event, payload, code] of cases) {
    assertError(await request(ann, event, payload), code)
  }
  // A message of exactly the limit is fine (multi-byte characters count as bytes).
  const big = 'é'.repeat(LIMITS.maxMessageBytes / 2)
  assert.equal((await request(ann, 'chat message', { message: big })).ok, true)
  assert.equal((await request(ann, 'chat message', { message: 'still here' })).ok, true)
})

test('refresh: a guest has no session token to refresh (UNAUTHORIZED), and stays connected', async () => {
  const ann = await guest('ann')
  for (const payload of [{ token: 'x.y.z' }, {}, 'nope']) {
    const ack = await request(ann, 'refresh', payload)
    assertError(ack, 'UNAUTHORIZED')
  }
  assert.equal((await request(ann, 'chat message', { message: 'still here' })).ok, true)
})

test('a packet over the payload limit (6 x the message limit + 4 KiB) closes that connection only', async () => {
  const ann = await guest('huge')
  const bob = await guest('bystander')
  const closed = new Promise((resolve) => ann.once('disconnect', resolve))
  // Over the Socket.IO payload limit, not only the message limit: the
  // server must not read it whole (a WebSocket message of up to 64 MiB
  // was otherwise buffered before any check).
  ann.emit('chat message', { message: 'x'.repeat(512 * 1024) }, () => {})
  let timer
  const reason = await Promise.race([closed, new Promise((resolve) => (timer = setTimeout(resolve, 5000, 'still open')))])
  clearTimeout(timer)
  assert.notEqual(reason, 'still open', 'the connection is closed')
  assert.equal((await request(bob, 'chat message', { message: 'still serving' })).ok, true)
})

test('a flood is answered RATE_LIMITED, and the server keeps serving', async () => {
  const ann = await guest('flood')
  const n = LIMITS.rateBurst * 3
  const acks = await Promise.all(Array.from({ length: n }, (_, i) => request(ann, 'chat message', { message: `f${i}` })))
  const ok = acks.filter((a) => a.ok)
  const limited = acks.filter((a) => !a.ok)
  assert.ok(ok.length >= LIMITS.rateBurst && ok.length < n, `ok: ${ok.length} of ${n}`)
  for (const a of limited) assertError(a, 'RATE_LIMITED')
  // Allowance comes back with time.
  await sleep(1200)
  assert.equal((await request(ann, 'chat message', { message: 'after the flood' })).ok, true)
  // Others were never limited.
  const bob = await guest('bob')
  assert.equal((await request(bob, 'chat message', { message: 'unaffected' })).ok, true)
})

test('a refused handshake gets connect_error with the code first', async () => {
  await assert.rejects(connect(server.url, { name: 'not a name!' }), (err) => err.message.startsWith('BAD_REQUEST'))
  await assert.rejects(connect(server.url, { name: 'x'.repeat(33) }), (err) => err.message.startsWith('BAD_REQUEST'))
  await assert.rejects(connect(server.url, { token: 'not.a.jwt' }), (err) => err.message.startsWith('UNAUTHORIZED'))
  await assert.rejects(connect(server.url, { token: 7 }), (err) => err.message.startsWith('BAD_REQUEST'))
  // An `auth` that is not an object is refused with a reason, not dropped.
  // (Bounded: a server that only closes the connection leaves connect() waiting.)
  for (const auth of ['ann', '42', [1, 2], true]) {
    const answered = Promise.race([connect(server.url, auth), sleep(5000).then(() => assert.fail('no connect_error within 5 s'))])
    await assert.rejects(answered, (err) => err.message.startsWith('BAD_REQUEST'), JSON.stringify(auth))
  }
  // A client with no auth at all (the tutorial's) is a guest.
  const anon = await connect(server.url, undefined)
  sockets.push(anon)
  const ack = await request(anon, 'chat message', { message: 'anonymous' })
  assert.equal(ack.ok, true)
})

test('/encrypt and /decrypt: the tutorial service API, behind the service token', async () => {
  const token = serviceToken(server)
  const post = async (path, body, auth = token) => {
    const headers = { 'content-type': 'application/json' }
    if (auth !== null) headers.authorization = `Bearer ${auth}`
    const res = await fetch(server.url + path, { method: 'POST', headers, body: JSON.stringify(body) })
    return { status: res.status, body: await res.json() }
  }
  const sealed = await post('/encrypt', { message: 'hello service', room: 'svc', context: 'ctx' })
  assert.equal(sealed.status, 200)
  const bytes = Buffer.from(sealed.body.encrypted, 'base64')
  assert.equal(bytes[0], 1)
  assert.equal(bytes.length, 18 + 'hello service'.length + 16)
  const opened = await post('/decrypt', { encrypted: sealed.body.encrypted, room: 'svc', context: 'ctx' })
  assert.deepEqual(opened, { status: 200, body: { message: 'hello service' } })
  const wrong = await post('/decrypt', { encrypted: sealed.body.encrypted, room: 'svc', context: 'other' })
  assert.equal(wrong.status, 400)
  assert.equal(wrong.body.error.code, 'BAD_REQUEST')
  const tutorial = await post('/encrypt', { message: 'tutorial' })
  assert.equal((await post('/decrypt', { encrypted: tutorial.body.encrypted })).body.message, 'tutorial')
  const bad = await post('/encrypt', { nope: 1 })
  assert.equal(bad.status, 400)
  assert.equal(bad.body.error.code, 'BAD_REQUEST')

  // Loopback is no credential: without the token, or with another, both
  // endpoints refuse (a reverse proxy on this host would otherwise publish
  // a decryption oracle).
  for (const auth of [null, '', 'wrong', token.slice(1)]) {
    const noDecrypt = await post('/decrypt', { encrypted: sealed.body.encrypted, room: 'svc', context: 'ctx' }, auth)
    assert.equal(noDecrypt.status, 401, `decrypt with ${JSON.stringify(auth)}`)
    assert.equal(noDecrypt.body.error.code, 'UNAUTHORIZED')
    assert.ok(!JSON.stringify(noDecrypt.body).includes('hello service'))
    const noEncrypt = await post('/encrypt', { message: 'x' }, auth)
    assert.equal(noEncrypt.status, 401, `encrypt with ${JSON.stringify(auth)}`)
  }
  // The generated token file is private.
  const file = require('node:path').join(server.dataDir, 'service-token')
  assert.equal(require('node:fs').statSync(file).mode & 0o777, 0o600)
})

test('/encrypt and /decrypt take an optional key epoch (default 0); a bad one is BAD_REQUEST', async () => {
  const token = serviceToken(server)
  const post = async (path, body) => {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${token}` }
    const res = await fetch(server.url + path, { method: 'POST', headers, body: JSON.stringify(body) })
    return { status: res.status, body: await res.json() }
  }
  const sealedAt = async (epoch) => {
    const res = await post('/encrypt', { message: `at ${epoch}`, room: 'svc', context: 'ctx', epoch })
    assert.equal(res.status, 200, JSON.stringify(res.body))
    return res.body.encrypted
  }
  for (const epoch of [1, 0xffffffff]) {
    const encrypted = await sealedAt(epoch)
    const opened = await post('/decrypt', { encrypted, room: 'svc', context: 'ctx', epoch })
    assert.deepEqual(opened, { status: 200, body: { message: `at ${epoch}` } })
    // Without `epoch` it is epoch 0: another key, so the tag fails.
    const asZero = await post('/decrypt', { encrypted, room: 'svc', context: 'ctx' })
    assert.equal(asZero.status, 400)
    assert.equal(asZero.body.error.reason, 'BAD_TAG')
    const other = await post('/decrypt', { encrypted, room: 'svc', context: 'ctx', epoch: epoch - 1 })
    assert.equal(other.body.error.reason, 'BAD_TAG')
  }
  // `epoch: 0` is what leaving it out means, both ways.
  const zero = await sealedAt(0)
  assert.equal((await post('/decrypt', { encrypted: zero, room: 'svc', context: 'ctx' })).body.message, 'at 0')
  const plain = (await post('/encrypt', { message: 'plain', room: 'svc', context: 'ctx' })).body.encrypted
  assert.equal((await post('/decrypt', { encrypted: plain, room: 'svc', context: 'ctx', epoch: 0 })).body.message, 'plain')
  for (const epoch of [-1, 1.5, 2 ** 32, '1', null, true, [1], { n: 1 }]) {
    for (const [path, body] of [
      ['/encrypt', { message: 'x', room: 'svc', epoch }],
      ['/decrypt', { encrypted: zero, room: 'svc', context: 'ctx', epoch }],
    ]) {
      const res = await post(path, body)
      assert.equal(res.status, 400, `${path} with epoch ${JSON.stringify(epoch)}`)
      assert.equal(res.body.error.code, 'BAD_REQUEST')
      assert.ok(!JSON.stringify(res.body).includes('at 0'))
    }
  }
})

test('/healthz answers', async () => {
  const res = await fetch(server.url + '/healthz')
  assert.equal(res.status, 200)
  assert.equal((await res.json()).status, 'ok')
})

test('without guests allowed (the default), a guest is refused UNAUTHORIZED', async () => {
  const closed = await start(TARGET, { guests: false, env: KEYS })
  try {
    await assert.rejects(connect(closed.url, { name: 'ann' }), (err) => err.message.startsWith('UNAUTHORIZED'))
    await assert.rejects(connect(closed.url, undefined), (err) => err.message.startsWith('UNAUTHORIZED'))
  } finally {
    await closed.stop()
  }
})

test('SIGTERM with sockets open: what was received is acked, then the server exits at once', async () => {
  const doomed = await start(TARGET, { env: KEYS, limits: { ...LIMITS, ratePerSec: 1000, rateBurst: 1000 } })
  const open = []
  try {
    const s = await connect(doomed.url, { name: 'late' })
    open.push(s)
    // Idle sockets must not hold the server up either.
    for (let i = 0; i < 5; i++) open.push(await connect(doomed.url, { name: `idle${i}` }))
    // One peer stops reading: it never answers the WebSocket close (ws
    // waits 30 s for that answer by default).
    open[open.length - 1].io.engine.transport.ws._socket.pause()
    await request(s, 'join', { room: 'shutdown' })
    const pending = Array.from({ length: 20 }, (_, i) =>
      s.timeout(5000).emitWithAck('chat message', { message: `m${i}`, room: 'shutdown', clientId: `sd-${i}` }),
    )
    await pending[0]
    const signalled = Date.now()
    doomed.child.kill('SIGTERM')
    const acks = await Promise.all(pending)
    assert.deepEqual(acks.map((a) => a.ok), Array(20).fill(true))
    const exit = await Promise.race([doomed.exited, sleep(8000).then(() => 'still running')])
    assert.notEqual(exit, 'still running', `no exit within 8 s of SIGTERM:\n${doomed.log.join('\n')}`)
    assert.equal(exit.code, 0, JSON.stringify(exit))
    console.log(`# ${TARGET}: exited ${Date.now() - signalled} ms after SIGTERM`)
  } finally {
    for (const s of open) s.close()
    await doomed.stop()
  }
})

test('GET /api/rooms lists rooms with messages by name, paged; bad queries are refused', async () => {
  const ann = await guest('lister')
  const tag = `list${process.pid}x${++roomCounter}`
  const names = [`${tag}-b`, `${tag}-a`, `${tag}-c`]
  for (const [i, room] of names.entries()) {
    await request(ann, 'join', { room })
    for (let n = 0; n <= i; n++) assert.equal((await request(ann, 'chat message', { message: `m${n}`, room })).ok, true)
  }
  await request(ann, 'join', { room: `${tag}-silent` }) // joined, never posted to: not a listed room
  const seen = []
  let after = `${tag}-`
  for (let i = 0; i < 10; i++) {
    const res = await fetch(`${server.url}/api/rooms?limit=2&after=${encodeURIComponent(after)}`)
    assert.equal(res.status, 200)
    const body = await res.json()
    assert.ok(body.rooms.length <= 2)
    seen.push(...body.rooms.filter((r) => r.name.startsWith(tag)))
    if (body.next === null || !body.next.startsWith(tag)) break
    after = body.next
  }
  assert.deepEqual(
    seen.map((r) => [r.name, r.lastSeq, r.private]),
    [[`${tag}-a`, 2, false], [`${tag}-b`, 1, false], [`${tag}-c`, 3, false]],
  )
  for (const q of ['limit=0', 'limit=201', 'limit=two', `after=${'z'.repeat(300)}`, 'sort=name']) {
    const res = await fetch(`${server.url}/api/rooms?${q}`)
    assert.equal(res.status, 400, q)
    assert.equal((await res.json()).error.code, 'BAD_REQUEST')
  }
  const forged = await fetch(`${server.url}/api/rooms`, { headers: { authorization: 'Bearer not-a-token' } })
  assert.equal(forged.status, 401)
})

test('typing reaches the others in the room, never the sender or outsiders; never stored; rate-limited', async () => {
  const room = freshRoom('typing')
  const [ann, bob, cat] = await Promise.all([guest('tann'), guest('tbob'), guest('tcat')])
  const got = new Map([[ann, []], [bob, []], [cat, []]])
  for (const [s, list] of got) s.on('typing', (t) => list.push(t))
  await request(ann, 'join', { room })
  await request(bob, 'join', { room })
  assert.deepEqual(await request(ann, 'typing', { room }), { ok: true })
  assert.deepEqual(await request(ann, 'typing', { room, typing: false }), { ok: true })
  await until(() => got.get(bob).length === 2, 5000, 'bob sees both')
  assert.deepEqual(got.get(bob), [
    { room, name: '~tann', typing: true },
    { room, name: '~tann', typing: false },
  ])
  await sleep(200)
  assert.deepEqual(got.get(ann), [], 'not to the sender')
  assert.deepEqual(got.get(cat), [], 'not to those outside the room')
  assertError(await request(cat, 'typing', { room }), 'FORBIDDEN')
  for (const bad of [{}, { room: '' }, { room, typing: 'yes' }, { room, extra: 1 }, 'lobby', [room]]) {
    assertError(await request(bob, 'typing', bad), 'BAD_REQUEST')
  }
  // Never stored: the room has no messages.
  const joined = await request(cat, 'join', { room, since: 0 })
  assert.deepEqual([joined.latestSeq, joined.missed], [0, []])
  // A flood is cut at the burst.
  const acks = await Promise.all(Array.from({ length: 20 }, () => request(bob, 'typing', { room })))
  const limited = acks.filter((a) => !a.ok)
  assert.ok(limited.length >= 10, `only ${limited.length} of 20 refused`)
  for (const a of limited) assertError(a, 'RATE_LIMITED')
})

test('presence: the join ack lists who is online; others see names come and go', async () => {
  const room = freshRoom('presence')
  const ann = await guest('pann')
  const events = []
  ann.on('presence', (p) => p.room === room && events.push(p))
  const first = await request(ann, 'join', { room })
  assert.deepEqual(first.presence, ['~pann'])
  const bob = await guest('pbob')
  const second = await request(bob, 'join', { room })
  assert.deepEqual(second.presence, ['~pann', '~pbob'])
  await until(() => events.some((e) => e.name === '~pbob' && e.online), 5000, 'bob online')
  bob.close()
  await until(() => events.some((e) => e.name === '~pbob' && !e.online), 5000, 'bob offline after his disconnect')
  assert.deepEqual(
    events.filter((e) => e.name === '~pbob').map((e) => [e.room, e.online]),
    [[room, true], [room, false]],
  )
})
