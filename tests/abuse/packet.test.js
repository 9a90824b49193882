'use strict'
// Issue 15, item 22: a 64 KiB message of `"` or control characters escapes
// to ~384 KiB of JSON; the packet limit (128 KiB) dropped the connection
// without an ack. The packet limit now follows from the message limit, on
// both servers (CHATSEAL_TARGET=rust|node).
const test = require('node:test')
const assert = require('node:assert/strict')
const { start, http, connect, ask, until } = require('./lib')
const { serviceToken } = require('../conformance/lib/servers')

const TARGET = process.env.CHATSEAL_TARGET || 'rust'
const MAX = 64 * 1024

test(`${TARGET}: every message the message limit admits is acked, however it escapes`, { timeout: 120000 }, async () => {
  const server = await start(TARGET)
  try {
    for (const transports of [['websocket'], ['polling']]) {
      const s = await connect(server.url, { name: 'ann' }, { transports })
      const bodies = { quotes: '"'.repeat(MAX), controls: '\u0001'.repeat(MAX), backslashes: '\\'.repeat(MAX) }
      for (const [what, message] of Object.entries(bodies)) {
        const ack = await ask(s, 'chat message', { message, clientId: `${what}-${transports[0]}` })
        assert.equal(ack.ok, true, `${what} over ${transports[0]}: ${JSON.stringify(ack).slice(0, 200)}`)
      }
      await until(() => s.received.length === 3, 10000, 'the three broadcasts')
      const over = await ask(s, 'chat message', { message: '"'.repeat(MAX + 1) })
      assert.equal(over.ok, false)
      assert.equal(over.error.code, 'TOO_LARGE')
      assert.ok(s.connected, `still connected over ${transports[0]}`)
      s.close()
    }
    // The HTTP API takes the same messages.
    const sealed = await http(server.url, 'POST', '/encrypt', {
      body: { message: '\u0001'.repeat(MAX) },
      headers: { authorization: `Bearer ${serviceToken(server)}` },
    })
    assert.equal(sealed.status, 200, JSON.stringify(sealed.body).slice(0, 200))
  } finally {
    await server.stop()
  }
})
