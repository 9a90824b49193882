'use strict'
// Helpers shared by the SDK suites: an SDK client that records what it
// shows, a raw reader of what the server stored, waiting.
const { connect } = require('../../../js/client')
const { io } = require('socket.io-client')
const { webcrypto, createHmac } = require('node:crypto')
const { JWT_SECRET } = require('../../conformance/lib/servers')

const open = []

/** An SDK client whose shown messages, statuses and outbox events are recorded. */
function sdk(options) {
  const c = connect({ ackTimeout: 2000, reconnectionDelayMax: 500, ...options })
  c.seen = []
  c.states = []
  c.outboxEvents = []
  c.on('message', (m) => c.seen.push(m))
  c.on('status', (s) => c.states.push(s.state))
  c.on('outbox', (e) => c.outboxEvents.push(e))
  open.push(c)
  return c
}

function closeAll() {
  while (open.length) open.pop().close()
}

async function until(predicate, what, ms = 10000) {
  const deadline = Date.now() + ms
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Opens a stored Message with a join ack's keys, by key id and epoch (independently of the SDK). */
async function openRaw(keys, msg) {
  const epoch = (x) => (x.epoch === undefined ? 0 : x.epoch)
  const entry = keys.find((k) => k.id === msg.keyId && epoch(k) === epoch(msg))
  if (!entry) return null
  const bytes = Buffer.from(msg.message, 'base64')
  const key = await webcrypto.subtle.importKey('raw', Buffer.from(entry.key, 'base64'), 'AES-GCM', false, ['decrypt'])
  const aad = Buffer.concat([bytes.subarray(0, 18), Buffer.from(`${msg.room}\0${msg.id}\0${msg.sender}`)])
  const plain = await webcrypto.subtle.decrypt({ name: 'AES-GCM', iv: bytes.subarray(6, 18), additionalData: aad }, key, bytes.subarray(18))
  return Buffer.from(plain).toString('utf8')
}

/** A plain socket.io-client connection (no SDK), resolved once connected. */
function raw(url, auth) {
  const socket = io(url, { auth, transports: ['websocket'], reconnection: false, forceNew: true })
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket))
    socket.once('connect_error', (err) => {
      socket.close()
      reject(err)
    })
  })
}

/** Every stored message of a room, opened, read page by page by a plain client. */
async function stored(url, room, auth = { name: 'auditor' }) {
  const socket = await raw(url, auth)
  try {
    const out = []
    let since = 0
    for (;;) {
      const ack = await socket.timeout(10000).emitWithAck('join', { room, since })
      if (!ack.ok) throw new Error(`${ack.error.code}: ${ack.error.message}`)
      for (const m of ack.missed) out.push({ seq: m.seq, sender: m.sender, text: await openRaw(ack.keys, m) })
      if (!ack.missed.length || ack.missed.at(-1).seq >= ack.latestSeq) return out
      since = ack.missed.at(-1).seq
    }
  } finally {
    socket.close()
  }
}

/** Posts `n` messages as `name` with a plain client, `prefix`1 … `prefix`n. */
async function post(url, room, name, n, prefix) {
  const socket = await raw(url, { name })
  try {
    const ack = await socket.timeout(10000).emitWithAck('join', { room })
    if (!ack.ok) throw new Error(ack.error.message)
    for (let i = 1; i <= n; i++) {
      const r = await socket.timeout(10000).emitWithAck('chat message', { room, message: `${prefix}${i}` })
      if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`)
    }
  } finally {
    socket.close()
  }
}

/** Texts seen for a room, and a check that seqs rise by one with no repeat. */
function texts(client, room) {
  return client.seen.filter((m) => m.room === room).map((m) => m.text)
}

function assertInOrderOnce(assert, client, room) {
  const seqs = client.seen.filter((m) => m.room === room).map((m) => m.seq)
  for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1, `seq ${seqs[i]} after ${seqs[i - 1]}`)
}

/**
 * A session token as the server issues them (HS256 with the suite's secret),
 * made in the test: what an app's getToken would fetch from its auth
 * backend, without a password hash's seconds per login in a debug build.
 */
function mint(sub, ttlSecs) {
  const now = Math.floor(Date.now() / 1000)
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, iss: 'chatseal', aud: 'chatseal-chat', iat: now, exp: now + ttlSecs })}`
  return `${body}.${createHmac('sha256', JWT_SECRET).update(body).digest('base64url')}`
}

module.exports = { mint, sdk, closeAll, until, sleep, stored, post, raw, texts, assertInOrderOnce }
