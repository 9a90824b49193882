'use strict'
// Crash safety: the server is killed with SIGKILL while clients send. After
// a restart on the same data directory, every message that was acked is in
// the room, in its acked place, opens to what was sent, and reaches a
// rejoining reader through `join { since }`. Resends of what was in flight
// (same clientId) are never stored twice.
const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { start } = require('./lib/servers')
const { connect, openMessage, sleep } = require('./lib/client')

const TARGET = process.env.CHATSEAL_TARGET || 'rust'
const FAST = { ratePerSec: 100000, rateBurst: 100000 }
const ROOM = 'crash-room'
const WRITERS = 3
const PER_WRITER = 120 // bounded: 360 messages at most, under one catch-up page
// Every server of this file shares one keyring: for rust-pg they share one
// database too, and a server refuses a keyring that does not open the
// messages already stored there.
const KEY_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'chatseal-crash-keys-'))
const KEYS = { CHATSEAL_KEYRING_FILE: path.join(KEY_DIR, 'keyring.json') }
fs.writeFileSync(KEYS.CHATSEAL_KEYRING_FILE, JSON.stringify({ primary: 1, keys: [{ id: 1, key: crypto.randomBytes(32).toString('base64') }] }), { mode: 0o600 })
after(() => fs.rmSync(KEY_DIR, { recursive: true, force: true }))

test('every acked message survives SIGKILL and is delivered on catch-up', { timeout: 120000 }, async () => {
  const first = await start(TARGET, { limits: FAST, env: KEYS })
  const acked = new Map() // clientId -> { id, seq, text }
  const unacked = new Map() // clientId -> text, sent but never acked
  const writers = []
  let historyId
  for (let w = 0; w < WRITERS; w++) {
    const s = await connect(first.url, { name: `writer${w}` })
    const join = await s.timeout(5000).emitWithAck('join', { room: ROOM })
    assert.equal(join.ok, true)
    historyId = join.historyId
    writers.push(s)
  }

  // Each writer sends one message at a time until the server dies.
  const loops = writers.map(async (s, w) => {
    for (let i = 0; i < PER_WRITER; i++) {
      const clientId = `w${w}-${i}`
      const text = `writer ${w} message ${i}`
      unacked.set(clientId, text)
      try {
        const ack = await s.timeout(2000).emitWithAck('chat message', { message: text, room: ROOM, clientId })
        if (!ack.ok) throw new Error(`refused: ${JSON.stringify(ack)}`)
        unacked.delete(clientId)
        acked.set(clientId, { id: ack.id, seq: ack.seq, text })
      } catch (err) {
        if (String(err.message).startsWith('refused')) throw err
        return // the server is gone
      }
    }
  })

  // Kill it mid-traffic: once some messages are acked, before all are.
  const deadline = Date.now() + 20000
  while (acked.size < 60 && Date.now() < deadline) await sleep(5)
  assert.ok(acked.size >= 60, `only ${acked.size} acks before the deadline`)
  await first.stop('SIGKILL')
  await Promise.all(loops)
  for (const s of writers) s.close()
  assert.ok(acked.size < WRITERS * PER_WRITER, 'the kill must land mid-traffic')

  const second = await start(TARGET, { limits: FAST, env: KEYS, dataDir: first.dataDir })
  try {
    const reader = await connect(second.url, { name: 'reader' })
    const join = await reader.timeout(5000).emitWithAck('join', { room: ROOM, since: 0 })
    assert.equal(join.ok, true)
    const bySeq = new Map(join.missed.map((m) => [m.seq, m]))
    assert.equal(join.missed.length, join.latestSeq, 'seq is gap-free')
    // The same history: clients keep the seqs they have seen.
    assert.equal(join.historyId, historyId)
    for (const [clientId, a] of acked) {
      const m = bySeq.get(a.seq)
      assert.ok(m, `acked ${clientId} (seq ${a.seq}) is missing after the crash`)
      assert.equal(m.id, a.id)
      assert.equal(await openMessage(join.keys, m), a.text)
    }

    // Whatever was in flight is resent with its clientId: stored once at most.
    const resender = await connect(second.url, { name: 'writer0' })
    await resender.timeout(5000).emitWithAck('join', { room: ROOM })
    const inFlight = [...unacked.keys()].filter((id) => id.startsWith('w0-'))
    for (const clientId of inFlight) {
      const ack = await resender.timeout(5000).emitWithAck('chat message', { message: unacked.get(clientId), room: ROOM, clientId })
      assert.equal(ack.ok, true)
    }
    const after = await reader.timeout(5000).emitWithAck('join', { room: ROOM, since: 0 })
    const texts = await Promise.all(after.missed.map((m) => openMessage(after.keys, m)))
    assert.equal(new Set(texts).size, texts.length, 'no message is stored twice')
    reader.close()
    resender.close()
  } finally {
    await second.stop()
    fs.rmSync(first.dataDir, { recursive: true, force: true })
  }
})

test('SIGTERM: what clients already sent is acked before the server exits', { timeout: 60000 }, async () => {
  const server = await start(TARGET, { limits: FAST, env: KEYS })
  try {
    const s = await connect(server.url, { name: 'late' })
    await s.timeout(5000).emitWithAck('join', { room: 'shutdown' })
    const pending = Array.from({ length: 30 }, (_, i) =>
      s.timeout(5000).emitWithAck('chat message', { message: `m${i}`, room: 'shutdown', clientId: `sd-${i}` }),
    )
    await pending[0]
    server.child.kill('SIGTERM')
    const acks = await Promise.all(pending)
    assert.deepEqual(acks.map((a) => a.ok), Array(30).fill(true))
    assert.deepEqual(acks.map((a) => a.seq), Array.from({ length: 30 }, (_, i) => i + 1))
    const exit = await Promise.race([
      server.exited,
      sleep(20000).then(() => {
        throw new Error(`the server did not exit within 20 s of SIGTERM:\n${server.log.join('\n')}`)
      }),
    ])
    assert.equal(exit.code, 0, `exit ${JSON.stringify(exit)}`)
    s.close()
  } finally {
    await server.stop()
    fs.rmSync(server.dataDir, { recursive: true, force: true })
  }
})
