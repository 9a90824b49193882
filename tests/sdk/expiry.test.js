'use strict'
// Session tokens that expire (Rust server, accounts; docs/protocol.md §1):
// with getToken the SDK refreshes the session in place before exp and the
// conversation goes on; without it the client says "expired", keeps what
// is waiting, and sends it once after a new login (setToken).
const { test, before, after, afterEach } = require('node:test')
const assert = require('node:assert/strict')
const { start } = require('../conformance/lib/servers')
const { sdk, closeAll, until, sleep, stored, texts, mint } = require('./lib/util')
const { balancer } = require('./lib/balancer')

const TTL_SECS = 5
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
  await account('rita')
  let calls = 0
  const rita = sdk({
    url: server.url,
    token: mint('rita', TTL_SECS),
    getToken: () => {
      calls++
      return mint('rita', TTL_SECS)
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

/** Offline past the token's exp: the reconnect is refused UNAUTHORIZED. */
async function offlinePastExp(client, lb) {
  lb.cut()
  await until(() => client.status.state === 'offline', 'offline')
  const sent = client.send('ops', `typed offline by ${client.user}`)
  await sleep((TTL_SECS + 1) * 1000)
  lb.restore()
  return sent
}

test('expired while offline, with getToken: a new token, the reconnect goes through, the send is stored once', { timeout: 60000 }, async () => {
  const login = await account('tom')
  const lb = await balancer(server.url)
  try {
    const tom = sdk({ url: lb.url, token: mint('tom', TTL_SECS), getToken: () => mint('tom', TTL_SECS), refreshBefore: 0 })
    await tom.join('ops')
    const ack = await offlinePastExp(tom, lb)
    assert.ok(ack.seq >= 1)
    assert.ok(!tom.states.includes('expired'), tom.states.join(','))
    await until(() => texts(tom, 'ops').includes('typed offline by tom'), 'shown')
    const all = (await stored(server.url, 'ops', { token: await login() })).map((m) => m.text)
    assert.equal(all.filter((t) => t === 'typed offline by tom').length, 1)
  } finally {
    await lb.close()
  }
})

test('expired while offline, without getToken: "expired" on the refused reconnect; setToken sends what waits', { timeout: 60000 }, async () => {
  const login = await account('ugo')
  const lb = await balancer(server.url)
  try {
    const ugo = sdk({ url: lb.url, token: await login() })
    await ugo.join('ops')
    let settled = false
    const pending = offlinePastExp(ugo, lb).finally(() => {
      settled = true
    })
    await until(() => ugo.status.state === 'expired', 'expired', 20000)
    assert.equal(ugo.status.code, 'UNAUTHORIZED')
    assert.equal(settled, false)
    assert.deepEqual(
      ugo.pending().map((p) => p.state),
      ['pending'],
    )
    ugo.setToken(await login())
    await pending
    await until(() => texts(ugo, 'ops').includes('typed offline by ugo'), 'shown')
    const all = (await stored(server.url, 'ops', { token: await login() })).map((m) => m.text)
    assert.equal(all.filter((t) => t === 'typed offline by ugo').length, 1)
  } finally {
    await lb.close()
  }
})
