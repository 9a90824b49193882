'use strict'
// The README's JavaScript snippet (under "Quick start"), run as written
// against a Rust server, with the token its curl lines would give: it must
// print the message it sent, opened.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { start, ROOT } = require('../conformance/lib/servers')

let server

before(async () => {
  server = await start('rust')
})

after(async () => {
  await server?.stop()
})

/** The first ```js block after "## Quick start". */
function snippet() {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const quick = readme.indexOf('## Quick start')
  assert.ok(quick >= 0, 'README has a Quick start')
  const m = /```js\n([\s\S]*?)```/.exec(readme.slice(quick))
  assert.ok(m, 'a js block under Quick start')
  return m[1]
}

async function post(route, body) {
  const res = await fetch(server.url + route, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return res.json()
}

test("the README's JS snippet runs and prints its own message, opened", { timeout: 60000 }, async () => {
  const code = snippet()
  assert.ok(code.includes("'http://127.0.0.1:3000'"), 'the snippet talks to the documented address')
  // The README's curl lines: register and log in ann.
  await post('/api/register', { username: 'ann', password: 'a long password' })
  const { token } = await post('/api/login', { username: 'ann', password: 'a long password' })
  assert.ok(token)
  // An app directory with the package installed, the snippet as app.mjs.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatseal-readme-'))
  fs.mkdirSync(path.join(dir, 'node_modules'))
  fs.symlinkSync(path.join(ROOT, 'js'), path.join(dir, 'node_modules', 'chatseal'), 'dir')
  const program = [
    'const token = process.env.TOKEN',
    code.replaceAll("'http://127.0.0.1:3000'", JSON.stringify(server.url)),
    // Wait until the snippet's own message has been shown, then stop.
    'while (chat.lastSeq(\'design\') < ack.seq) await new Promise((r) => setTimeout(r, 20))',
    'chat.close()',
  ].join('\n')
  fs.writeFileSync(path.join(dir, 'app.mjs'), program)
  const out = await new Promise((resolve, reject) =>
    execFile(process.execPath, ['app.mjs'], { cwd: dir, env: { ...process.env, TOKEN: token }, timeout: 30000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  )
  assert.equal(out.trim(), '#1 ann: hello')
})
