'use strict'
// Issue 15, item 10 (cluster): each joined room cost a PostgreSQL query per
// second (5,000 rooms: 2,971 transactions/s). Catch-up now reads only rooms
// with a gap, and every room in a slow sweep.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { Client } = require(require.resolve('pg', { paths: [path.join(__dirname, '..', 'conformance')] }))
const { start, connect, ask, sleep, until } = require('./lib')

const ADMIN = process.env.CHATSEAL_TEST_PG || 'postgres://root@127.0.0.1:5432/test'
const REDIS_PORT = Number(process.env.CHATSEAL_TEST_REDIS_PORT || 6379)
const ROOMS = 150

test('idle joined rooms cost the database nothing between sweeps', { timeout: 120000 }, async () => {
  const admin = new Client({ connectionString: ADMIN })
  await admin.connect()
  const db = `chatseal_abuse_${process.pid}_${Date.now()}`
  await admin.query(`CREATE DATABASE ${db}`)
  let server, socket
  try {
    const url = new URL(ADMIN)
    url.pathname = `/${db}`
    server = await start('rust', {
      env: {
        DATABASE_URL: url.toString(),
        REDIS_URL: `redis://127.0.0.1:${REDIS_PORT}`,
        CHATSEAL_REDIS_CHANNEL: `chatseal-abuse-${process.pid}-${Date.now()}`,
        CHATSEAL_MAX_ROOMS_PER_SOCKET: '1000',
        CHATSEAL_JOIN_BURST: '1000',
        CHATSEAL_JOIN_PER_SEC: '1000',
        CHATSEAL_CLUSTER_SWEEP_SECS: '600',
      },
    })
    socket = await connect(server.url, { name: 'ann' })
    for (let i = 0; i < ROOMS; i++) assert.equal((await ask(socket, 'join', { room: `room-${i}` })).ok, true)
    const commits = async () =>
      Number((await admin.query('SELECT xact_commit FROM pg_stat_database WHERE datname = $1', [db])).rows[0].xact_commit)
    // PostgreSQL 15 backends report their counts when idle, but at most
    // every second, and an idle one that had to wait reports after 10 s:
    // the joins' own transactions must be counted before the window opens,
    // and the window's before it is read.
    const FLUSH = 11000
    const WINDOW = 10
    await sleep(FLUSH)
    const before = await commits()
    await sleep(WINDOW * 1000)
    await sleep(FLUSH)
    const spent = (await commits()) - before
    console.log(`${spent} transactions in ${WINDOW} s with ${ROOMS} idle rooms joined (and the flush wait)`)
    // One query per room per second would be ~1,500 in the window; what is
    // left is each server's once-a-second key heartbeat and generation poll.
    assert.ok(spent < ROOMS, `${spent} transactions`)
    // A message still arrives.
    assert.equal((await ask(socket, 'chat message', { room: 'room-7', message: 'hi' })).ok, true)
    await until(() => socket.received.length === 1, 5000, 'the broadcast')
  } finally {
    socket?.close()
    await server?.stop()
    await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)
    await admin.end()
  }
})
