'use strict'
// A full disk under the Rust server's SQLite store: messages are refused
// UNAVAILABLE (never acked ok), /healthz says so, and once space is back
// the server stores again by itself, without a restart.
//
// The disk is real: the server runs in its own user and mount namespace
// (`unshare`, no privileges needed) with its data directory on a small
// tmpfs. The test fills that tmpfs through /proc/<pid>/root and frees it.
const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { start, LIMITS } = require('../conformance/lib/servers')
const { connect, request } = require('../conformance/lib/client')

const DISK = '16m'
let server
let socket

after(async () => {
  socket?.close()
  await server?.stop()
})

const health = async () => {
  const res = await fetch(server.url + '/healthz')
  return { status: res.status, body: await res.json() }
}

test('a full disk refuses messages, /healthz says so, and storing resumes once space is back', async () => {
  server = await start('rust', {
    limits: { ...LIMITS, ratePerSec: 1000, rateBurst: 1000 },
    // The final check reads every message back in one join ack.
    env: { CHATSEAL_MAX_ACK_BYTES: String(64 << 20) },
    wrap: (cmd, args, dataDir) => [
      'unshare',
      [
        '--user', '--map-root-user', '--mount', '--',
        'sh', '-c', 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"',
        'sh', DISK, dataDir, cmd, ...args,
      ],
    ],
  })
  // The server's own view of its data directory: the tmpfs.
  const dir = path.join(`/proc/${server.child.pid}/root`, server.dataDir)
  assert.ok(fs.existsSync(path.join(dir, 'chatseal.db')), 'the store is on the small disk')

  socket = await connect(server.url, { name: 'ann' })
  const room = 'disk'
  await request(socket, 'join', { room })
  const big = 'x'.repeat(60 * 1024)
  assert.equal((await request(socket, 'chat message', { message: 'before', room, clientId: 'c0' })).ok, true)

  // Fill the disk to the last byte.
  const filler = path.join(dir, 'filler')
  const fd = fs.openSync(filler, 'w')
  const chunk = Buffer.alloc(64 * 1024)
  try {
    for (;;) fs.writeSync(fd, chunk)
  } catch (err) {
    assert.equal(err.code, 'ENOSPC')
  }
  try {
    for (;;) fs.writeSync(fd, chunk, 0, 512)
  } catch (err) {
    assert.equal(err.code, 'ENOSPC')
  }
  fs.closeSync(fd)

  // Bursts of big messages until the store runs out of room: a burst is
  // stored as one batch of megabytes, more than SQLite's page cache, so it
  // spills into the WAL mid-transaction, and the disk fills right there
  // (SQLite then ends the transaction itself). The WAL can take a few
  // bursts into space it already holds.
  const refused = []
  let sent = 0
  for (let round = 0; round < 10 && refused.length === 0; round++) {
    const burst = Array.from({ length: 40 }, () => `c${++sent}`)
    const acks = await Promise.all(burst.map((clientId) => request(socket, 'chat message', { message: big, room, clientId })))
    acks.forEach((ack, i) => {
      if (!ack.ok) refused.push({ ack, clientId: burst[i] })
    })
  }
  assert.ok(refused.length > 0, 'a full disk refuses messages')
  for (const { ack } of refused) assert.equal(ack.error.code, 'UNAVAILABLE')
  const down = await health()
  assert.equal(down.status, 503, `healthz while the disk is full: ${JSON.stringify(down.body)}`)
  assert.equal(down.body.store, 'unavailable')

  // Space is back: the refused messages, resent, are stored; so are new ones.
  fs.unlinkSync(filler)
  for (const { clientId } of refused) {
    const again = await request(socket, 'chat message', { message: big, room, clientId })
    assert.equal(again.ok, true, `after space is back: ${JSON.stringify(again)}`)
  }
  const next = await request(socket, 'chat message', { message: 'after', room, clientId: 'after' })
  assert.equal(next.ok, true)
  assert.equal(next.seq, sent + 2, 'every message stored once: before, the bursts, after')
  const up = await health()
  assert.equal(up.status, 200, JSON.stringify(up.body))

  // A fresh reader sees every acked message exactly once, in order.
  const { missed } = await request(socket, 'join', { room, since: 0 })
  assert.deepEqual(
    missed.map((m) => m.seq),
    Array.from({ length: next.seq }, (_, i) => i + 1),
  )
})

test('/healthz turns 200 again with space back, even when no message comes', async () => {
  // Covered above after a resend; here the health probe alone must notice.
  // (Runs on the server the first test left in a healthy state: fill, fail
  // one message, free, and only ask /healthz.)
  const dir = path.join(`/proc/${server.child.pid}/root`, server.dataDir)
  const filler = path.join(dir, 'filler')
  const fd = fs.openSync(filler, 'w')
  try {
    for (;;) fs.writeSync(fd, Buffer.alloc(4096))
  } catch (err) {
    assert.equal(err.code, 'ENOSPC')
  }
  fs.closeSync(fd)
  let refused = null
  for (let i = 0; i < 100 && !refused; i++) {
    const ack = await request(socket, 'chat message', { message: 'y'.repeat(60 * 1024), room: 'disk' })
    if (!ack.ok) refused = ack
  }
  assert.equal(refused?.error.code, 'UNAVAILABLE')
  assert.equal((await health()).status, 503)
  fs.unlinkSync(filler)
  assert.equal((await health()).status, 200)
})
