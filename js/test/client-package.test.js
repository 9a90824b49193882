'use strict'
// chatseal/client as an app gets it: `require` and `import` of the package
// name, and its hand-written .d.ts under `tsc --strict` with no other flag
// (and under nodenext, as a Node ESM project sees it).
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const PKG = path.resolve(__dirname, '..')
const TSC = path.join(PKG, 'node_modules', 'typescript', 'bin', 'tsc')

/** An app directory with the package installed as node_modules/chatseal. */
function app() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatseal-app-'))
  fs.mkdirSync(path.join(dir, 'node_modules'))
  fs.symlinkSync(PKG, path.join(dir, 'node_modules', 'chatseal'), 'dir')
  return dir
}

/** Runs tsc; a failure shows its diagnostics. */
function tsc(cwd, args) {
  try {
    execFileSync(process.execPath, [TSC, ...args], { cwd, stdio: 'pipe' })
  } catch (err) {
    assert.fail(`tsc ${args.join(' ')}:\n${err.stdout}${err.stderr}`)
  }
}

// No async/await: tsc's default target (ES5) has no Promise constructor;
// the .d.ts must not need one.
const USE = `
const chat = connect({ url: 'http://127.0.0.1:1', name: 'ann', getToken: () => 'token' })
chat.on('message', (m) => {
  const text: string | null = m.text
  const seq: number = m.seq
  const epoch: number | null = m.epoch
  if (m.error) console.log(m.error.code, epoch)
  console.log(text, seq, m.own)
})
chat.on('status', (s) => console.log(s.state === 'expired', s.reason))
chat.on('room key', (k) => console.log(k.room, k.keyId + k.epoch))
chat.on('outbox', (e) => console.log(e.clientId, e.state, e.error?.code))
chat.join('design', { since: 0 }).then((joined) => {
  console.log(joined.latestSeq)
  return chat.send('design', 'hello')
}).then((ack) => chat.history('design', { before: ack.seq, limit: 10 }))
  .then((older) => console.log(older.length, chat.pending().length, chat.status.state))
  .catch((e: unknown) => {
    if (e instanceof ChatError) console.log(e.code)
  })
chat.close()
`

test('require and import of chatseal/client give the same SDK', () => {
  const dir = app()
  fs.writeFileSync(path.join(dir, 'a.cjs'), "const c = require('chatseal/client'); console.log(typeof c.connect, typeof c.ChatError)")
  fs.writeFileSync(
    path.join(dir, 'b.mjs'),
    "import { connect, ChatError } from 'chatseal/client'; import { createRequire } from 'node:module';" +
      "const same = createRequire(import.meta.url)('chatseal/client').connect === connect; console.log(typeof connect, typeof ChatError, same)",
  )
  assert.equal(execFileSync(process.execPath, ['a.cjs'], { cwd: dir }).toString().trim(), 'function function')
  assert.equal(execFileSync(process.execPath, ['b.mjs'], { cwd: dir }).toString().trim(), 'function function true')
})

test('the .d.ts passes tsc --strict with no other flag, and under nodenext', () => {
  const dir = app()
  fs.writeFileSync(path.join(dir, 'app.ts'), `import { connect, ChatError } from 'chatseal/client'\n${USE}`)
  tsc(dir, ['--strict', '--noEmit', 'app.ts'])
  fs.writeFileSync(path.join(dir, 'esm.mts'), `import { connect, ChatError } from 'chatseal/client'\n${USE}`)
  tsc(dir, ['--strict', '--noEmit', '--module', 'nodenext', '--types', 'node', '--typeRoots', path.join(PKG, 'node_modules', '@types'), 'esm.mts'])
})

test('the .d.ts is checked: a wrong use is an error', () => {
  const dir = app()
  fs.writeFileSync(path.join(dir, 'bad.ts'), "import { connect } from 'chatseal/client'\nconnect({ url: 1 }).send('r', 2)\n")
  assert.throws(() => execFileSync(process.execPath, [TSC, '--strict', '--noEmit', 'bad.ts'], { cwd: dir, stdio: 'pipe' }))
})

test('without a global WebCrypto (Node 18) the SDK opens envelopes with node:crypto', async () => {
  const { webcrypto } = require('node:crypto')
  const key = webcrypto.getRandomValues(new Uint8Array(32))
  const header = Buffer.alloc(18)
  header[0] = 1
  header[1] = 1
  header.writeUInt32BE(1, 2)
  webcrypto.getRandomValues(header.subarray(6))
  const ck = await webcrypto.subtle.importKey('raw', key, 'AES-GCM', false, ['encrypt'])
  const aad = Buffer.concat([header, Buffer.from('r\0id1\0bob')])
  const ct = await webcrypto.subtle.encrypt({ name: 'AES-GCM', iv: header.subarray(6), additionalData: aad }, ck, Buffer.from('hello'))
  const msg = { id: 'id1', room: 'r', sender: 'bob', keyId: 1, message: Buffer.concat([header, Buffer.from(ct)]).toString('base64') }
  const dir = app()
  // The envelope module itself (not exported by the package), as the SDK loads it.
  const envelope = JSON.stringify(path.join(PKG, 'client', 'sdk', 'envelope.js'))
  fs.writeFileSync(
    path.join(dir, 'open.cjs'),
    `const { RoomKeys } = require(${envelope})
     if (globalThis.crypto !== undefined) throw new Error('global WebCrypto is still there')
     const keys = new RoomKeys()
     keys.add('r', [{ id: 1, key: ${JSON.stringify(Buffer.from(key).toString('base64'))} }])
       .then(() => keys.open(${JSON.stringify(msg)}))
       .then((t) => console.log(t), (e) => { console.error(e); process.exit(1) })`,
  )
  const out = execFileSync(process.execPath, ['--no-experimental-global-webcrypto', 'open.cjs'], { cwd: dir }).toString().trim()
  assert.equal(out, 'hello')
})
