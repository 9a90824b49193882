'use strict'
// Issue 15, items 17 and 19: with RUST_LOG=trace the server used to log
// JWTs, room keys and plaintext (WebSocket and Engine.IO frames) and the
// Engine.IO sid (a bearer credential). No log setting may print them.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { start, http, connect, ask, until, openMessage } = require('./lib')

test('RUST_LOG=trace prints no token, room key, plaintext or sid', { timeout: 120000 }, async () => {
  const server = await start('rust', { env: { RUST_LOG: 'trace' } })
  try {
    const password = 'a long password'
    assert.equal((await http(server.url, 'POST', '/api/register', { body: { username: 'ann', password } })).status, 201)
    const login = await http(server.url, 'POST', '/api/login', { body: { username: 'ann', password } })
    const token = login.body.token
    assert.ok(token)
    const plaintext = `swordfish-${crypto.randomUUID()}`
    const sockets = []
    for (const transports of [['websocket'], ['polling']]) {
      const s = await connect(server.url, { token }, { transports })
      sockets.push(s)
      const joined = await ask(s, 'join', { room: 'secret-room' })
      assert.equal(joined.ok, true)
      assert.equal((await ask(s, 'chat message', { room: 'secret-room', message: plaintext })).ok, true)
      await until(() => s.received.length > 0, 5000, 'the broadcast')
      assert.equal(await openMessage(joined.keys, s.received[0]), plaintext)
      s.keys = joined.keys
    }
    const sids = sockets.map((s) => s.io.engine.id)
    for (const s of sockets) s.close()
    await server.stop()
    const log = server.log.join('\n')
    assert.ok(log.length > 1000, 'trace logging is on')
    const secrets = {
      token,
      'token signature': token.split('.')[2],
      plaintext,
      'room key': sockets[0].keys[0].key,
      ...Object.fromEntries(sids.map((sid, i) => [`sid ${i}`, sid])),
    }
    for (const [what, value] of Object.entries(secrets)) {
      assert.ok(!log.includes(value), `the log holds the ${what}`)
    }
  } finally {
    await server.stop()
  }
})
