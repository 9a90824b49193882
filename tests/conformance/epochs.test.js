'use strict'
// Room key epochs (Rust server): a room forgets members. Removing a member,
// creating a private room over a name others joined, and an owner's reset
// each start a new epoch, whose key only those still in the room get.
// docs/format.md §1 (the derivation), docs/protocol.md (`room key`).
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { execFileSync } = require('node:child_process')
const path = require('node:path')
const { start, serviceToken } = require('./lib/servers')
const { connect, request, until, chatContext } = require('./lib/client')

let server
const sockets = []

before(async () => {
  server = await start(process.env.CHATSEAL_TARGET || 'rust')
})

after(async () => {
  for (const s of sockets) s.close()
  await server.stop()
})

async function api(method, url, body, token) {
  const headers = { 'content-type': 'application/json' }
  if (token) headers.authorization = `Bearer ${token}`
  const res = await fetch(server.url + url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}

const tag = crypto.randomBytes(3).toString('hex')
async function account(name) {
  const username = `${name}${tag}`
  const password = `pw-${name}-${crypto.randomBytes(4).toString('hex')}`
  assert.equal((await api('POST', '/api/register', { username, password })).status, 201)
  const login = await api('POST', '/api/login', { username, password })
  assert.equal(login.status, 200)
  return { username, token: login.body.token }
}

/** A socket that keeps every key it is ever given, as a hostile client would. */
async function as(auth) {
  const s = await connect(server.url, auth)
  s.keys = []
  s.roomKeys = []
  s.on('room key', (e) => {
    s.roomKeys.push(e)
    s.keys.push(e.key)
  })
  sockets.push(s)
  return s
}

async function join(s, room) {
  const ack = await request(s, 'join', { room })
  if (ack.ok) s.keys.push(...ack.keys)
  return ack
}

/** Opens a Message with one key; the plaintext, or null when the tag fails. */
function openWith(key, msg) {
  const bytes = Buffer.from(msg.message, 'base64')
  const d = crypto.createDecipheriv('aes-256-gcm', Buffer.from(key.key, 'base64'), bytes.subarray(6, 18))
  d.setAAD(Buffer.concat([bytes.subarray(0, 18), chatContext(msg.room, msg.id, msg.sender)]))
  d.setAuthTag(bytes.subarray(bytes.length - 16))
  try {
    return Buffer.concat([d.update(bytes.subarray(18, bytes.length - 16)), d.final()]).toString('utf8')
  } catch {
    return null
  }
}

/** Opens with the key the message names (keyId and epoch), as a client does. */
function open(keys, msg) {
  const key = keys.find((k) => k.id === msg.keyId && k.epoch === msg.epoch)
  return key ? openWith(key, msg) : null
}

/** Tries every key held, whatever it names: all a removed member could do. */
function opensWithAny(keys, msg) {
  return keys.some((k) => openWith(k, msg) !== null)
}

/** The envelope of message `id` as stored, read from the database file. */
function storedEnvelope(id) {
  if ((process.env.CHATSEAL_TARGET || 'rust') !== 'rust') return null
  const db = path.join(server.dataDir, 'chatseal.db')
  const script = 'import sqlite3,sys\n' +
    'c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)\n' +
    'r = c.execute("SELECT envelope, epoch FROM chat_messages WHERE id = ?", (sys.argv[2],)).fetchone()\n' +
    'print(r[0] + " " + str(r[1]))'
  const [envelope, epoch] = execFileSync('python3', ['-c', script, db, id], { encoding: 'utf8' }).trim().split(' ')
  return { envelope, epoch: Number(epoch) }
}

test('a removed member who kept every key cannot open what is sealed after, members can', async () => {
  const ann = await account('ann')
  const bob = await account('bob')
  const eve = await account('eve')
  const room = `epochs-${tag}`
  assert.equal((await api('POST', '/api/rooms', { name: room, private: true }, ann.token)).status, 201)
  for (const u of [bob, eve]) {
    assert.equal((await api('POST', `/api/rooms/${room}/members`, { username: u.username }, ann.token)).status, 200)
  }
  const [a, b, e] = [await as({ token: ann.token }), await as({ token: bob.token }), await as({ token: eve.token })]
  const ackA = await join(a, room)
  await join(b, room)
  const ackE = await join(e, room)
  // A private room starts at epoch 1; a member gets every epoch's keys.
  assert.equal(ackA.epoch, 1)
  assert.deepEqual([...new Set(ackE.keys.map((k) => k.epoch))].sort(), [0, 1])
  const first = await request(a, 'chat message', { room, message: 'before the removal' })
  await until(() => e.received.some((m) => m.id === first.id), 5000, 'eve receives the first message')
  const m1 = e.received.find((m) => m.id === first.id)
  assert.equal(m1.epoch, 1)
  assert.equal(open(e.keys, m1), 'before the removal')

  const closed = []
  e.on('room closed', (ev) => closed.push(ev))
  const removed = await api('DELETE', `/api/rooms/${room}/members/${eve.username}`, undefined, ann.token)
  assert.deepEqual(removed.body, { ok: true, epoch: 2 })
  await until(() => closed.length === 1, 5000, 'eve is put out')
  // The members still in get the new epoch's key; eve does not.
  await until(() => b.roomKeys.some((k) => k.room === room && k.key.epoch === 2), 5000, 'bob gets the epoch-2 key')
  assert.ok(!e.roomKeys.some((k) => k.key.epoch === 2), 'eve is given no key of epoch 2')

  const second = await request(a, 'chat message', { room, message: 'after the removal' })
  assert.equal(second.ok, true)
  await until(() => b.received.some((m) => m.id === second.id), 5000, 'bob receives the second message')
  const m2 = b.received.find((m) => m.id === second.id)
  assert.equal(m2.epoch, 2)
  assert.equal(open(b.keys, m2), 'after the removal', 'a member opens it with the key it was sent')
  assert.ok(!e.received.some((m) => m.id === second.id), 'eve receives nothing more')
  assert.ok(!opensWithAny(e.keys, m2), 'no key eve ever held opens it')
  // Read straight from the database, as someone with a copy of it would.
  const stored = storedEnvelope(second.id)
  if (stored) {
    assert.equal(stored.epoch, 2)
    assert.equal(stored.envelope, m2.message)
    assert.ok(!opensWithAny(e.keys, { ...m2, message: stored.envelope }))
  }
  // History: old messages keep opening for members, at their own epoch.
  const history = await api('GET', `/api/rooms/${room}/messages`, undefined, bob.token)
  assert.deepEqual(history.body.map((m) => [m.epoch, open(b.keys, m)]), [[1, 'before the removal'], [2, 'after the removal']])
  assert.equal((await api('GET', `/api/rooms/${room}/messages`, undefined, eve.token)).status, 403)
  assert.equal((await request(e, 'join', { room })).error.code, 'FORBIDDEN')

  // A member who joins later gets every epoch's keys and reads it all.
  const cy = await account('cy')
  assert.equal((await api('POST', `/api/rooms/${room}/members`, { username: cy.username }, ann.token)).status, 200)
  const c = await as({ token: cy.token })
  const ackC = await request(c, 'join', { room })
  assert.equal(ackC.epoch, 2)
  assert.deepEqual(ackC.missed.map((m) => open(ackC.keys, m)), ['before the removal', 'after the removal'])
})

test('a name used publicly, then made private, leaves its earlier joiners unable to read or post', async () => {
  const ann = await account('pa')
  const room = `made-private-${tag}`
  const lurker = await as({ name: `lurk${tag}` })
  const early = await join(lurker, room)
  assert.equal(early.epoch, 0)
  assert.ok(early.keys.every((k) => k.epoch === 0))
  assert.equal((await api('POST', '/api/rooms', { name: room, private: true }, ann.token)).status, 201)
  const a = await as({ token: ann.token })
  const ack = await join(a, room)
  assert.equal(ack.epoch, 1)
  const sent = await request(a, 'chat message', { room, message: 'members only' })
  const history = await api('GET', `/api/rooms/${room}/messages`, undefined, ann.token)
  const msg = history.body.find((m) => m.id === sent.id)
  assert.equal(msg.epoch, 1)
  assert.equal(open(a.keys, msg), 'members only')
  assert.ok(!opensWithAny(lurker.keys, msg), 'the epoch-0 keys handed out while the name was public open nothing')
  assert.ok(!lurker.received.some((m) => m.id === sent.id))
  assert.equal((await request(lurker, 'chat message', { room, message: 'still here?' })).error.code, 'FORBIDDEN')
  assert.equal((await request(lurker, 'join', { room })).error.code, 'FORBIDDEN')
})

test('an owner resets a room key; only the owner may; members get it and read across epochs', async () => {
  const ann = await account('ra')
  const bob = await account('rb')
  const room = `reset-${tag}`
  assert.equal((await api('POST', '/api/rooms', { name: room }, ann.token)).status, 201)
  const a = await as({ token: ann.token })
  const b = await as({ token: bob.token })
  assert.equal((await join(a, room)).epoch, 0)
  await join(b, room)
  const before = await request(a, 'chat message', { room, message: 'epoch zero' })
  assert.equal((await api('POST', `/api/rooms/${room}/reset-key`, undefined, bob.token)).status, 403)
  assert.equal((await api('POST', `/api/rooms/${room}/reset-key`)).status, 401)
  assert.equal((await api('POST', `/api/rooms/nowhere-${tag}/reset-key`, undefined, ann.token)).status, 404)
  const reset = await api('POST', `/api/rooms/${room}/reset-key`, undefined, ann.token)
  assert.deepEqual(reset.body, { room, epoch: 1 })
  await until(() => b.roomKeys.some((k) => k.key.epoch === 1), 5000, 'bob gets the new key')
  const afterReset = await request(b, 'chat message', { room, message: 'epoch one' })
  await until(() => a.received.some((m) => m.id === afterReset.id), 5000, 'ann receives')
  const m = a.received.find((x) => x.id === afterReset.id)
  assert.equal(m.epoch, 1)
  assert.equal(open(a.keys, m), 'epoch one')
  const again = await request(b, 'join', { room, since: 0 })
  assert.deepEqual(again.missed.map((x) => [x.id, x.epoch, open(again.keys, x)]), [[before.id, 0, 'epoch zero'], [afterReset.id, 1, 'epoch one']])
})

test('/encrypt and /decrypt take a room key epoch, and refuse a bad one', async () => {
  const token = serviceToken(server)
  const call = (route, body) => api('POST', route, body, token)
  const sealed = await call('/encrypt', { message: 'hi', room: 'svc', context: 'c', epoch: 3 })
  assert.equal(sealed.status, 200)
  const opened = await call('/decrypt', { encrypted: sealed.body.encrypted, room: 'svc', context: 'c', epoch: 3 })
  assert.deepEqual(opened.body, { message: 'hi' })
  const wrong = await call('/decrypt', { encrypted: sealed.body.encrypted, room: 'svc', context: 'c' })
  assert.equal(wrong.status, 400)
  assert.equal(wrong.body.error.reason, 'BAD_TAG', 'under another epoch it does not open')
  for (const epoch of [-1, 1.5, '1', 2 ** 32, null]) {
    const bad = await call('/encrypt', { message: 'hi', epoch })
    assert.equal(bad.status, 400, `epoch ${JSON.stringify(epoch)}`)
    assert.equal(bad.body.error.code, 'BAD_REQUEST', `epoch ${JSON.stringify(epoch)}`)
  }
})
