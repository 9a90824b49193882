'use strict'
// Headless Debian Chromium (playwright-core, never a downloaded browser)
// driving the browser client: sign in, send, and find a message line.
const fs = require('node:fs')
const path = require('node:path')
const { chromium } = require('playwright-core')
const { ROOT } = require('../../conformance/lib/servers')

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const ARTIFACTS = path.join(ROOT, 'tests', 'artifacts')
// CHATSEAL_CLIENT_DIST: another build of the client (e.g. an old one, to show a bug).
const CLIENT = ['--client-dir', process.env.CHATSEAL_CLIENT_DIST || path.join(ROOT, 'js', 'client', 'dist')]

function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}

/** A fresh page (own storage) with its errors collected. */
async function newPage(browser, viewport) {
  const context = await browser.newContext(viewport ? { viewport } : {})
  const page = await context.newPage()
  page.errors = []
  page.on('pageerror', (e) => page.errors.push(e.message))
  return page
}

async function signIn(browser, url, name, viewport) {
  const page = await newPage(browser, viewport)
  await page.goto(url + '/')
  await page.fill('#guest-name', name)
  await page.click('#guest-form button')
  await page.waitForSelector('#status[data-state="online"]')
  await page.waitForSelector('#rooms li[aria-current="true"]', { state: 'attached' })
  return page
}

async function joinRoom(page, room) {
  // On a phone the room list is a drawer behind the menu button.
  if (!(await page.locator('#room-name').isVisible())) await page.click('#menu')
  await page.fill('#room-name', room)
  await page.click('#join-form button')
  await page.waitForSelector(`#room-title:text-is("${room}")`)
}

async function say(page, text) {
  await page.fill('#message', text)
  await page.click('#send-form button')
}

/** A shown message line: sender (guests may be shown as `~name`) and text. */
const line = (sender, text) => `#messages li:has(.sender:text-matches("^~?${sender}$")):has-text("${text}")`

function shot(page, name, opts = {}) {
  fs.mkdirSync(ARTIFACTS, { recursive: true })
  const file = path.join(ARTIFACTS, name)
  return page.screenshot({ path: file, ...opts }).then(() => file)
}

module.exports = { launch, newPage, signIn, joinRoom, say, line, shot, CLIENT, ARTIFACTS }
