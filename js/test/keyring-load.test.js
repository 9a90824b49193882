'use strict'
// The Node server's keyring loading (lib/keyring.js): the same variables and
// rules as the Rust server. The development keyring is wrapped under a KEK
// made beside it; a wrapped keyring needs its KEK and a wrong one is
// refused, never replaced; a plain keyring loads with a warning, and not
// while a KEK is configured.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Keyring, generateKek } = require('..')
const { loadKeyring } = require('../lib/keyring')

const config = (dataDir, keyringFile = null) => ({ dataDir, keyringFile, keyringEnv: 'CHATSEAL_TEST_KEYRING' })
const temp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'chatseal-keyload-'))
const same = (a, b) => assert.equal(a.toJson(), b.toJson())

test('the development keyring is wrapped under a KEK made beside it, 0600', () => {
  const dir = path.join(temp(), 'data')
  const first = loadKeyring(config(dir), {})
  assert.match(first.created, /created a new development keyring/)
  const file = JSON.parse(fs.readFileSync(path.join(dir, 'keyring.json'), 'utf8'))
  assert.equal(file.format, 'chatseal wrapped keyring')
  assert.equal(fs.statSync(path.join(dir, 'kek')).mode & 0o777, 0o600)
  assert.equal(fs.statSync(path.join(dir, 'keyring.json')).mode & 0o777, 0o600)
  const again = loadKeyring(config(dir), {})
  assert.equal(again.created, undefined)
  same(again.keyring, first.keyring)
  // A wrong KEK in its place: WRONG_KEK, and the keyring file stays.
  const before = fs.readFileSync(path.join(dir, 'keyring.json'))
  fs.rmSync(path.join(dir, 'kek'))
  fs.writeFileSync(path.join(dir, 'kek'), generateKek().toString('base64'), { mode: 0o600 })
  assert.throws(() => loadKeyring(config(dir), {}), (err) => err.code === 'WRONG_KEK')
  assert.deepEqual(fs.readFileSync(path.join(dir, 'keyring.json')), before)
  // No KEK at all: told what to give.
  fs.rmSync(path.join(dir, 'kek'))
  assert.throws(() => loadKeyring(config(dir), {}), /no key-encryption key is configured.*CHATSEAL_KEK_FILE/)
  assert.ok(!fs.existsSync(path.join(dir, 'kek')))
})

test('a configured KEK file, variable or passphrase opens a wrapped keyring file', () => {
  const dir = temp()
  const kek = generateKek()
  const kekFile = path.join(dir, 'kek.b64')
  fs.writeFileSync(kekFile, `${kek.toString('base64')}\n`, { mode: 0o600 })
  const keyring = Keyring.generate()
  const file = path.join(dir, 'keyring.json')
  keyring.saveWrappedFile(file, kek)
  same(loadKeyring(config(dir, file), { CHATSEAL_KEK_FILE: kekFile }).keyring, keyring)
  same(loadKeyring(config(dir, file), { CHATSEAL_KEK: kek.toString('base64') }).keyring, keyring)
  assert.throws(
    () => loadKeyring(config(dir, file), { CHATSEAL_KEK_FILE: kekFile, CHATSEAL_KEK: kek.toString('base64') }),
    /more than one key-encryption key/,
  )
  fs.chmodSync(kekFile, 0o644)
  assert.throws(() => loadKeyring(config(dir, file), { CHATSEAL_KEK_FILE: kekFile }), /chmod 600/)
  const byPassphrase = path.join(dir, 'by-passphrase.json')
  keyring.saveWrappedFile(byPassphrase, { passphrase: 'correct horse battery staple' })
  same(loadKeyring(config(dir, byPassphrase), { CHATSEAL_KEK_PASSPHRASE: 'correct horse battery staple' }).keyring, keyring)
  assert.throws(
    () => loadKeyring(config(dir, byPassphrase), { CHATSEAL_KEK_PASSPHRASE: 'wrong horse battery staple' }),
    (err) => err.code === 'WRONG_KEK',
  )
  // Wrapped in the variable.
  same(loadKeyring(config(dir), { CHATSEAL_TEST_KEYRING: keyring.wrap(kek), CHATSEAL_KEK: kek.toString('base64') }).keyring, keyring)
})

test('a plain keyring loads with a warning, and not while a KEK is configured', () => {
  const dir = temp()
  const file = path.join(dir, 'keyring.json')
  const keyring = Keyring.generate()
  keyring.saveFile(file)
  const loaded = loadKeyring(config(dir, file), {})
  same(loaded.keyring, keyring)
  assert.match(loaded.warning, /plain JSON.*keys wrap/)
  assert.throws(() => loadKeyring(config(dir, file), { CHATSEAL_KEK: generateKek().toString('base64') }), /is a plain keyring/)
  assert.throws(() => loadKeyring(config(dir, file), { CHATSEAL_PKCS11_MODULE: '/x.so' }), /PKCS#11/)
})
