'use strict'
// PostgreSQL that hangs: connections stay open but nothing comes back (a
// stalled database, a network path that silently drops). The Rust server
// must answer UNAVAILABLE after its store timeout instead of holding acks
// as long as the hang lasts, and serve again by itself after it.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { start } = require('../conformance/lib/servers')
const { connect, request } = require('../conformance/lib/client')
const { proxy } = require('../conformance/lib/proxy')
const { withDatabase } = require('./lib/database')

// The hang outlasts the timeout several times over: an ack that waits for
// the hang to end cannot arrive in time.
const HANG_MS = 20000
const STORE_TIMEOUT_MS = 2000

let db
let pg
let server
let socket

before(async () => {
  db = await withDatabase()
  pg = await proxy(5432)
  const url = new URL(db.url)
  url.port = String(pg.port)
  server = await start('rust', {
    env: { DATABASE_URL: url.toString(), CHATSEAL_STORE_TIMEOUT_MS: String(STORE_TIMEOUT_MS) },
  })
  socket = await connect(server.url, { name: 'ann' })
})

after(async () => {
  socket?.close()
  await server?.stop()
  await pg?.close()
  await db?.drop()
})

test('a hung database gets UNAVAILABLE within the store timeout, and service resumes after it', async () => {
  const room = 'hang'
  await request(socket, 'join', { room })
  assert.equal((await request(socket, 'chat message', { message: 'before', room, clientId: 'c1' })).ok, true)

  pg.freeze()
  const started = Date.now()
  const ack = await socket.timeout(HANG_MS).emitWithAck('chat message', { message: 'during', room, clientId: 'c2' })
  const waited = Date.now() - started
  assert.equal(ack.ok, false, 'nothing is acked ok while the database hangs')
  assert.equal(ack.error.code, 'UNAVAILABLE')
  console.log(`# UNAVAILABLE after ${waited} ms (store timeout ${STORE_TIMEOUT_MS} ms)`)
  const health = await fetch(server.url + '/healthz')
  assert.equal(health.status, 503)

  pg.thaw()
  // The resend of the refused message is stored once; new ones follow.
  let again
  for (let i = 0; i < 20; i++) {
    again = await socket.timeout(HANG_MS).emitWithAck('chat message', { message: 'during', room, clientId: 'c2' })
    if (again.ok) break
    await new Promise((r) => setTimeout(r, 250))
  }
  assert.equal(again.ok, true, JSON.stringify(again))
  const next = await request(socket, 'chat message', { message: 'after', room, clientId: 'c3' })
  assert.equal(next.ok, true)
  assert.equal(next.seq, again.seq + 1)
  const { missed } = await request(socket, 'join', { room, since: 0 })
  assert.deepEqual(
    missed.map((m) => m.seq),
    Array.from({ length: next.seq }, (_, i) => i + 1),
  )
  assert.equal((await fetch(server.url + '/healthz')).status, 200)
})

test('a join while the database hangs is answered too', async () => {
  pg.freeze()
  try {
    const ack = await socket.timeout(HANG_MS).emitWithAck('join', { room: 'hang-join', since: 0 })
    assert.equal(ack.ok, false)
    assert.equal(ack.error.code, 'UNAVAILABLE')
  } finally {
    pg.thaw()
  }
  let ack
  for (let i = 0; i < 20; i++) {
    ack = await socket.timeout(HANG_MS).emitWithAck('join', { room: 'hang-join', since: 0 })
    if (ack.ok) break
    await new Promise((r) => setTimeout(r, 250))
  }
  assert.equal(ack.ok, true)
})

