'use strict'
// Issue 15, item 7: a login flood. Every unknown-user login used to hash
// with a fresh 19 MiB (1,200 at once: 9.35 GB, kept). Now hashes run a few
// at a time in reused buffers, and logins are throttled per address and
// per account (429 with Retry-After) before anything is hashed.
const test = require('node:test')
const assert = require('node:assert/strict')
const { start, http, peakRssMiB, sleep } = require('./lib')

const login = (url, username, from) =>
  http(url, 'POST', '/api/login', { body: { username, password: 'not the password' }, from })

test('a flood of unknown-user logins keeps memory bounded', { timeout: 300000 }, async () => {
  // The throttle is out of the way (one login per address anyway): this is
  // about what a flood from many addresses costs.
  const server = await start('rust', { env: { CHATSEAL_LOGIN_QUEUE: '1000' } })
  try {
    const before = peakRssMiB(server.child.pid)
    const replies = await Promise.all(
      Array.from({ length: 48 }, (_, i) => login(server.url, `nobody${i}`, `127.0.1.${i + 1}`)),
    )
    for (const r of replies) assert.equal(r.status, 401, JSON.stringify(r.body))
    const peak = peakRssMiB(server.child.pid)
    console.log(`peak RSS ${peak.toFixed(1)} MiB (before the flood ${before.toFixed(1)} MiB) after 48 parallel logins`)
    // 48 hashes of 19 MiB at once would be over 900 MiB.
    assert.ok(peak < 300, `peak RSS ${peak} MiB`)
  } finally {
    await server.stop()
  }
})

test('logins are throttled per address, with Retry-After, before hashing', { timeout: 120000 }, async () => {
  const server = await start('rust', { env: { CHATSEAL_LOGIN_IP_BURST: '3', CHATSEAL_LOGIN_IP_PER_SEC: '1' } })
  try {
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => login(server.url, `u${i}`, '127.0.2.1')))
    const limited = replies.filter((r) => r.status === 429)
    assert.ok(limited.length >= 4, `429s: ${limited.length}`)
    for (const r of limited) {
      assert.equal(r.body.error.code, 'RATE_LIMITED')
      assert.ok(Number(r.headers['retry-after']) >= 1, r.headers['retry-after'])
    }
    // Another address is not affected.
    assert.equal((await login(server.url, 'other', '127.0.2.2')).status, 401)
    // After Retry-After, the first address may try again.
    await sleep(Number(limited[0].headers['retry-after']) * 1000 + 100)
    assert.equal((await login(server.url, 'again', '127.0.2.1')).status, 401)
  } finally {
    await server.stop()
  }
})

test('logins to one account are throttled whatever the address', { timeout: 120000 }, async () => {
  const server = await start('rust', { env: { CHATSEAL_LOGIN_ACCOUNT_BURST: '2', CHATSEAL_LOGIN_ACCOUNT_PER_SEC: '0.1' } })
  try {
    const replies = []
    for (let i = 0; i < 5; i++) replies.push(await login(server.url, i % 2 ? 'Ann' : 'ann', `127.0.3.${i + 1}`))
    assert.deepEqual(
      replies.map((r) => r.status),
      [401, 401, 429, 429, 429],
    )
    assert.ok(Number(replies[2].headers['retry-after']) >= 1)
  } finally {
    await server.stop()
  }
})
