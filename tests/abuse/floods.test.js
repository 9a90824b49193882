'use strict'
// Issue 15, items 8 and 9: Engine.IO handshake floods and slowloris.
const test = require('node:test')
const assert = require('node:assert/strict')
const { start, http, rawConnect, connect, sleep } = require('./lib')

const handshake = (url, from) => http(url, 'GET', '/socket.io/?EIO=4&transport=polling', { from })

test('Engine.IO sessions are capped per address and pending in total; slots come back', { timeout: 60000 }, async () => {
  const server = await start('rust', {
    env: { CHATSEAL_MAX_SESSIONS_PER_IP: '5', CHATSEAL_MAX_PENDING_SESSIONS: '8', CHATSEAL_CONNECT_TIMEOUT_SECS: '1' },
  })
  try {
    const first = await Promise.all(Array.from({ length: 7 }, () => handshake(server.url, '127.0.4.1')))
    const statuses = first.map((r) => r.status).sort()
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429])
    const refused = first.find((r) => r.status === 429)
    assert.equal(refused.body.error.code, 'RATE_LIMITED')
    assert.ok(Number(refused.headers['retry-after']) >= 1)
    // 5 pending now; three more from other addresses reach the total cap.
    for (let i = 2; i <= 4; i++) assert.equal((await handshake(server.url, `127.0.4.${i}`)).status, 200)
    const full = await handshake(server.url, '127.0.4.9')
    assert.equal(full.status, 503)
    assert.equal(full.body.error.code, 'UNAVAILABLE')
    // Sessions that never connect end after the connect timeout, and give
    // their slots back.
    let again
    for (let i = 0; i < 50; i++) {
      await sleep(200)
      again = await handshake(server.url, '127.0.4.1')
      if (again.status === 200) break
    }
    assert.equal(again.status, 200)
    // A socket that connects is no longer pending.
    const socket = await connect(server.url, { name: 'ann' })
    socket.close()
  } finally {
    await server.stop()
  }
})

test('slowloris: half-sent request heads time out; connections are capped per address', { timeout: 60000 }, async () => {
  const server = await start('rust', { env: { CHATSEAL_HEADER_TIMEOUT_SECS: '1', CHATSEAL_MAX_CONNECTIONS_PER_IP: '10' } })
  try {
    const slow = []
    for (let i = 0; i < 10; i++) {
      const s = await rawConnect(server.url, '127.0.5.1')
      s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n')
      slow.push(s)
    }
    await sleep(200)
    // Over the per-address cap: closed at once.
    const extra = await rawConnect(server.url, '127.0.5.1')
    const closedFast = await Promise.race([extra.gone.then(() => true), sleep(2000).then(() => false)])
    assert.ok(closedFast, 'a connection over the per-address cap is closed')
    // Everyone else is served meanwhile.
    assert.equal((await http(server.url, 'GET', '/healthz', { from: '127.0.5.2' })).status, 200)
    // The half-sent heads are cut off after the header timeout.
    const all = await Promise.race([Promise.all(slow.map((s) => s.gone)).then(() => true), sleep(5000).then(() => false)])
    assert.ok(all, 'half-open requests are closed after the header timeout')
    // And the address may connect again.
    assert.equal((await http(server.url, 'GET', '/healthz', { from: '127.0.5.1' })).status, 200)
  } finally {
    await server.stop()
  }
})
