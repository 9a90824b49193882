'use strict'
// Two browser pages (Debian's Chromium, driven by playwright-core) chat
// through the Rust server with the browser client; each shows the other's
// message, decrypted in the page with WebCrypto. A page that reloads and
// signs in again sees the history. The screenshot is saved as an artifact.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { launch } = require('./lib/pages')
const { start, ROOT } = require('../conformance/lib/servers')
const { connect } = require('../conformance/lib/client')

const ARTIFACTS = path.join(ROOT, 'tests', 'artifacts')
let server
let browser

const TARGET = process.env.CHATSEAL_TARGET || 'rust'
const CLIENT = ['--client-dir', path.join(ROOT, 'js', 'client', 'dist')]

before(async () => {
  server = await start(TARGET, { extraArgs: CLIENT })
  browser = await launch()
})

after(async () => {
  await browser?.close()
  await server?.stop()
})

async function signIn(name) {
  const context = await browser.newContext()
  const page = await context.newPage()
  const errors = []
  const frames = []
  page.on('pageerror', (e) => errors.push(e.message))
  page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(String(f.payload))))
  await page.goto(server.url + '/')
  await page.fill('#guest-name', name)
  await page.click('#guest-form button')
  await page.waitForSelector('#status[data-state="online"]')
  await page.waitForSelector('#rooms li[aria-current="true"]')
  return { page, errors, frames }
}

async function say(page, text) {
  await page.fill('#message', text)
  await page.click('#send-form button')
}

// Guests may be shown as `~name` (the hardening branch marks them).
const line = (sender, text) => `#messages li:has(.sender:text-matches("^~?${sender}$")):has-text("${text}")`

test('two pages chat and each reads the other, decrypted in the browser', { timeout: 60000 }, async () => {
  const ann = await signIn('ann')
  const bob = await signIn('bob')

  await say(ann.page, 'hello from ann')
  // Guests show as ~name: a guest can never pass for the account of that name.
  await bob.page.waitForSelector(line('~ann', 'hello from ann'), { timeout: 10000 })
  await say(bob.page, 'hi ann, bob here')
  await ann.page.waitForSelector(line('~bob', 'hi ann, bob here'), { timeout: 10000 })

  // What came over the wire was sealed: the plaintext exists in the page only.
  const wire = bob.frames.join('\n')
  assert.ok(wire.includes('"sender":"~ann"'), 'bob received ann\'s message frame')
  assert.ok(!wire.includes('hello from ann'), 'no plaintext on the wire')

  // A third page joining later gets the history on join.
  const carol = await signIn('carol')
  await carol.page.waitForSelector(line('~ann', 'hello from ann'), { timeout: 10000 })
  await carol.page.waitForSelector(line('~bob', 'hi ann, bob here'), { timeout: 10000 })

  fs.mkdirSync(ARTIFACTS, { recursive: true })
  const shot = path.join(ARTIFACTS, 'browser-chat.png')
  await bob.page.screenshot({ path: shot, fullPage: true })
  assert.ok(fs.statSync(shot).size > 1000)
  assert.deepEqual([...ann.errors, ...bob.errors, ...carol.errors], [])
})

test('another room, and a bad room name shows the server\'s code', { timeout: 60000 }, async () => {
  const dave = await signIn('dave')
  await dave.page.fill('#room-name', 'room two')
  await dave.page.click('#join-form button')
  await dave.page.waitForSelector('#rooms li:text-is("room two")')
  await say(dave.page, 'in room two')
  await dave.page.waitForSelector(line('~dave', 'in room two'))
  // Bad input shows the server's code, and the page keeps working.
  await dave.page.evaluate(() => document.getElementById('room-name').removeAttribute('maxlength'))
  await dave.page.fill('#room-name', 'x'.repeat(65))
  await dave.page.click('#join-form button')
  await dave.page.waitForSelector('#chat-error:has-text("BAD_REQUEST")')
  await say(dave.page, 'still working')
  await dave.page.waitForSelector(line('~dave', 'still working'))
})

test('an account registers and logs in from the page; others see its name', { timeout: 60000 }, async () => {
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(server.url + '/')
  await page.fill('#username', 'erin')
  await page.fill('#password', 'erin has a long password')
  await page.click('#account-form button[value="register"]')
  await page.waitForSelector('#status[data-state="online"]')
  const fred = await signIn('fred')
  await say(page, 'signed in as erin')
  await fred.page.waitForSelector(line('erin', 'signed in as erin'), { timeout: 10000 })
  // A wrong password is refused with the server's code, on a fresh page.
  const other = await (await browser.newContext()).newPage()
  await other.goto(server.url + '/')
  await other.fill('#username', 'erin')
  await other.fill('#password', 'not her password')
  await other.click('#account-form button[value="login"]')
  await other.waitForSelector('#signin-error:has-text("UNAUTHORIZED")')
})

test('after the server restarts, the page reconnects and catches up with since', { timeout: 90000 }, async () => {
  const gina = await signIn('gina')
  await say(gina.page, 'before the restart')
  await gina.page.waitForSelector(line('~gina', 'before the restart'))

  const address = new URL(server.url).host
  await server.stop('SIGKILL')
  await gina.page.waitForSelector('#status[data-state="offline"]', { timeout: 10000 })
  server = await start(TARGET, { extraArgs: CLIENT, dataDir: server.dataDir, listen: address })

  // Sent while the page is still away: it must arrive through catch-up.
  const hank = await connect(server.url, { name: 'hank' })
  const ack = await hank.timeout(5000).emitWithAck('chat message', { message: 'while you were away' })
  assert.equal(ack.ok, true)
  await gina.page.waitForSelector('#status[data-state="online"]', { timeout: 30000 })
  await gina.page.waitForSelector(line('~hank', 'while you were away'), { timeout: 10000 })
  // Nothing is shown twice after the catch-up.
  assert.equal(await gina.page.locator(line('~gina', 'before the restart')).count(), 1)
  hank.close()
})
