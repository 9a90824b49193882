'use strict'
// Session tokens that expire, in the browser (Rust server, tokens living 5 s).
// The page without a way to renew its token shows "expired", keeps what is
// typed, and sends it once after the person logs in again. The SDK with
// getToken (its browser build, dist/chatseal-client.js) refreshes in place.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { start } = require('../conformance/lib/servers')
const { stored, mint } = require('../sdk/lib/util')
const { balancer } = require('../sdk/lib/balancer')
const { launch, newPage, say, line, shot, CLIENT } = require('./lib/pages')

const TTL_SECS = 5
let server
let browser

before(async () => {
  server = await start('rust', { extraArgs: CLIENT, env: { CHATSEAL_TOKEN_TTL_SECS: String(TTL_SECS) } })
  browser = await launch()
})

after(async () => {
  await browser?.close()
  await server?.stop()
})

test('the page: "expired" banner, typed messages kept, sent once after logging in again', { timeout: 60000 }, async () => {
  const page = await newPage(browser)
  await page.goto(server.url + '/')
  await page.fill('#username', 'tess')
  await page.fill('#password', 'tess has a long password')
  await page.click('#account-form button[value="register"]')
  await page.waitForSelector('#status[data-state="online"]')
  await say(page, 'before expiry')
  await page.waitForSelector(line('tess', 'before expiry'))
  await page.waitForSelector('#status[data-state="expired"]', { timeout: (TTL_SECS + 5) * 1000 })
  await page.waitForSelector('#banner:visible:has-text("expired")')
  await say(page, 'typed while expired')
  await page.waitForSelector('#outbox li[data-state="pending"]:has-text("typed while expired")')
  await shot(page, 'expired.png')
  await page.fill('#relogin-password', 'tess has a long password')
  await page.click('#relogin-form button')
  await page.waitForSelector(line('tess', 'typed while expired'), { timeout: 10000 })
  await page.waitForSelector('#outbox li', { state: 'detached' })
  assert.equal(await page.locator(line('tess', 'typed while expired')).count(), 1)
  const token = await (
    await fetch(server.url + '/api/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'tess', password: 'tess has a long password' }),
    })
  ).json()
  const texts = (await stored(server.url, 'lobby', { token: token.token })).map((m) => m.text)
  assert.deepEqual(texts, ['before expiry', 'typed while expired'])
  assert.deepEqual(page.errors, [])
})

test('the SDK in the browser with getToken: refreshed in place, never expired', { timeout: 60000 }, async () => {
  await fetch(server.url + '/api/register', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'uma', password: 'uma has a long password' }),
  })
  const page = await newPage(browser)
  // The app's auth backend, as far as the page knows: a fresh token on demand.
  await page.exposeFunction('freshToken', () => mint('uma', TTL_SECS))
  await page.goto(server.url + '/index.html')
  const result = await page.evaluate(async (ttl) => {
    const { connect } = await import('/chatseal-client.js')
    const login = () => window.freshToken()
    const states = []
    const shown = []
    const refreshed = []
    const chat = connect({ url: location.origin, token: await login(), getToken: login })
    chat.on('status', (s) => states.push(s.state))
    chat.on('message', (m) => shown.push(m.text))
    chat.on('token', (t) => refreshed.push(t.ok))
    await chat.join('sdk')
    const deadline = Date.now() + 3 * ttl * 1000
    let n = 0
    while (Date.now() < deadline) {
      await chat.send('sdk', `m${++n}`)
      await new Promise((r) => setTimeout(r, 500))
    }
    while (shown.length < n) await new Promise((r) => setTimeout(r, 20))
    chat.close()
    return { states, shown, refreshed, n }
  }, TTL_SECS)
  assert.deepEqual(result.shown, Array.from({ length: result.n }, (_, i) => `m${i + 1}`))
  assert.ok(result.refreshed.length >= 2 && result.refreshed.every(Boolean), JSON.stringify(result.refreshed))
  assert.ok(!result.states.includes('expired') && !result.states.includes('offline'), result.states.join(','))
})

test('the page, offline past the token\'s exp: "expired" when the reconnect is refused; logging in again sends what waits', { timeout: 60000 }, async () => {
  const lb = await balancer(server.url)
  try {
    const page = await newPage(browser)
    await page.goto(lb.url + '/')
    await page.fill('#username', 'vic')
    await page.fill('#password', 'vic has a long password')
    await page.click('#account-form button[value="register"]')
    await page.waitForSelector('#status[data-state="online"]')
    lb.cut()
    await page.waitForSelector('#status[data-state="offline"]', { timeout: 10000 })
    await say(page, 'typed offline, token expired meanwhile')
    await page.waitForSelector('#outbox li[data-state="pending"]')
    await new Promise((r) => setTimeout(r, (TTL_SECS + 1) * 1000))
    lb.restore()
    await page.waitForSelector('#status[data-state="expired"]', { timeout: 20000 })
    await page.waitForSelector('#banner:visible:has-text("expired")')
    await page.waitForSelector('#relogin-form:visible')
    assert.equal(await page.locator('#outbox li[data-state="pending"]').count(), 1, 'kept')
    await shot(page, 'expired-offline.png')
    await page.fill('#relogin-password', 'vic has a long password')
    await page.click('#relogin-form button')
    await page.waitForSelector(line('vic', 'typed offline, token expired meanwhile'), { timeout: 15000 })
    await page.waitForSelector('#outbox li', { state: 'detached' })
    await page.waitForSelector('#banner', { state: 'hidden' })
    assert.equal(await page.locator(line('vic', 'typed offline, token expired meanwhile')).count(), 1)
    assert.deepEqual(page.errors, [])
  } finally {
    await lb.close()
  }
})
