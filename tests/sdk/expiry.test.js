'use strict'
// Session tokens that expire (Rust server, accounts; docs/protocol.md §1):
// with getToken the SDK refreshes the session in place before exp and the
// conversation goes on; without it the client says "expired", keeps what
// is waiting, and sends it once after a new login (setToken).
const { test, before, after, afterEach } = require('node:test')
const assert = require('node:assert/strict')
const { start } = require('../conformance/lib/servers')
const { sdk, closeAll, until, sleep, stored, texts } = require('./lib/util')

const TTL_SECS = 3
let server

before(async () => {
  server = await start('rust', { env: { CHATSEAL_TOKEN_TTL_SECS: String(TTL_SECS) } })
})

afterEach(() => closeAll())

after(async () => {
  await server?.stop()
})

async function http(method, path, body) {
  const res = await fetch(server.url + path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const json = await res.json()
  if (!res.ok) throw new Error(`${path}: ${JSON.stringify(json)}`)
  return json
}

async function account(username) {
  const password = `${username} has a long password`
  await http('POST', '/api/register', { username, password })
  return () => http('POST', '/api/login', { username, password }).then((r) => r.token)
}

test('with getToken: refreshed in place before exp, the session never ends', { timeout: 60000 }, async () => {
  const login = await account('rita')
  let calls = 0
  const rita = sdk({
    url: server.url,
    token: await login(),
    getToken: () => {
      calls++
      return login()
    },
  })
  const refreshed = []
  rita.on('token', (t) => refreshed.push(t))
  await rita.join('design')
  // Three token lifetimes, a message every half second.
  const deadline = Date.now() + 3 * TTL_SECS * 1000
  let n = 0
  while (Date.now() < deadline) {
    await rita.send('design', `m${++n}`)
    await sleep(500)
  }
  assert.ok(calls >= 2, `getToken called ${calls} times`)
  assert.ok(refreshed.length >= 2 && refreshed.every((t) => t.ok), JSON.stringify(refreshed))
  assert.ok(!rita.states.includes('expired'), rita.states.join(','))
  assert.ok(!rita.states.includes('offline'), `refreshed in place, no reconnect: ${rita.states.join(',')}`)
  await until(() => texts(rita, 'design').length === n, 'all shown')
})

test('without getToken: "expired", what waits is kept, and sent once after a new login', { timeout: 60000 }, async () => {
  const login = await account('sam')
  const sam = sdk({ url: server.url, token: await login() })
  await sam.join('ops')
  await sam.send('ops', 'before expiry')
  await until(() => sam.status.state === 'expired', 'expired', (TTL_SECS + 5) * 1000)
  assert.equal(sam.status.code, 'UNAUTHORIZED')
  let settled = false
  const waiting = sam.send('ops', 'typed after expiry').finally(() => {
    settled = true
  })
  await sleep(1000)
  assert.equal(settled, false, 'kept, neither sent nor failed')
  assert.deepEqual(
    sam.pending().map((p) => [p.text, p.state]),
    [['typed after expiry', 'pending']],
  )
  sam.setToken(await login())
  const ack = await waiting
  assert.equal(ack.seq, 2)
  await until(() => texts(sam, 'ops').length === 2, 'shown')
  assert.deepEqual(
    (await stored(server.url, 'ops', { token: await login() })).map((m) => m.text),
    ['before expiry', 'typed after expiry'],
  )
})
