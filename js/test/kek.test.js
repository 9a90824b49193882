'use strict'
// The wrapped keyring (docs/format.md §8) through the addon, from the shared
// vector file tests/vectors/keyring-wrap-v1.json that the Rust engine and the
// C library run too: every case opens (with its KEK and, for a passphrase,
// with the passphrase) to its keyring, its KEK id and wrapping key are
// reproduced with node:crypto, its sealed form is reproduced from the
// case's nonce, and every invalid case is refused with its exact code, in
// the sync and the async forms.
const test = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Keyring, generateKek, kekId, errorCodes } = require('..')

const vectors = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', '..', 'tests', 'vectors', 'keyring-wrap-v1.json'), 'utf8'),
)
const b64 = (s) => Buffer.from(s, 'base64')
const hkdf = (kek, info, len) => Buffer.from(crypto.hkdfSync('sha256', kek, Buffer.alloc(0), info, len))
const plain = (keyring) => JSON.parse(keyring.toJson())
const code = (c) => (err) => err instanceof Error && err.code === c

test('the vector file has valid and invalid cases, WRONG_KEK among the codes', () => {
  assert.ok(vectors.cases.length >= 5)
  assert.ok(vectors.invalid.length >= 20)
  assert.ok(errorCodes().includes('WRONG_KEK'))
})

for (const c of vectors.cases) {
  const wrapped = JSON.stringify(c.file)
  test(`opens: ${c.name}`, async () => {
    assert.deepEqual(plain(Keyring.unwrap(wrapped, c.kek)), c.keyring)
    assert.deepEqual(plain(Keyring.unwrap(wrapped, b64(c.kek))), c.keyring)
    assert.deepEqual(plain(await Keyring.unwrapAsync(wrapped, c.kek)), c.keyring)
    if (c.passphrase !== undefined) {
      assert.deepEqual(plain(Keyring.unwrapPassphrase(wrapped, c.passphrase)), c.keyring)
      assert.deepEqual(plain(await Keyring.unwrapPassphraseAsync(wrapped, Buffer.from(c.passphrase))), c.keyring)
    }
  })

  test(`reproduces: ${c.name}`, () => {
    const kek = b64(c.kek)
    assert.equal(kekId(kek), c.kek_id)
    assert.equal(kekId(c.kek), c.file.kek_id)
    assert.equal(hkdf(kek, 'chatseal/v1/kek-id', 8).toString('hex'), c.kek_id)
    const wrappingKey = hkdf(kek, 'chatseal/v1/keyring-wrap', 32)
    assert.equal(wrappingKey.toString('base64'), c.wrapping_key)
    const context = Buffer.concat([Buffer.from('chatseal keyring v1\0'), Buffer.from(c.kek_id, 'hex')])
    assert.equal(context.toString('base64'), c.context)
    const header = Buffer.concat([Buffer.from([1, 1]), Buffer.from(c.kek_id, 'hex').subarray(0, 4), b64(c.nonce)])
    const cipher = crypto.createCipheriv('aes-256-gcm', wrappingKey, b64(c.nonce))
    cipher.setAAD(Buffer.concat([header, context]))
    const body = Buffer.concat([cipher.update(b64(c.plaintext)), cipher.final(), cipher.getAuthTag()])
    assert.equal(Buffer.concat([header, body]).toString('base64'), c.file.sealed)
    if (c.token_key !== undefined) {
      // The KEK as a PKCS#11 token seals it: AES-256-GCM under the token's key.
      const aad = Buffer.concat([Buffer.from('chatseal kek v1\0'), Buffer.from(c.kek_id, 'hex')])
      assert.equal(aad.toString('base64'), c.token_aad)
      const token = crypto.createCipheriv('aes-256-gcm', b64(c.token_key), b64(c.file.token.nonce))
      token.setAAD(aad)
      const sealedKek = Buffer.concat([token.update(kek), token.final(), token.getAuthTag()])
      assert.equal(sealedKek.toString('base64'), c.file.token.sealed_kek)
    }
  })
}

for (const c of vectors.invalid) {
  test(`refuses with ${c.error}: ${c.name}`, async () => {
    const wrapped = JSON.stringify(c.file)
    if (c.kek !== undefined) {
      assert.throws(() => Keyring.unwrap(wrapped, c.kek), code(c.error))
      await assert.rejects(Keyring.unwrapAsync(wrapped, c.kek), code(c.error))
    } else {
      assert.throws(() => Keyring.unwrapPassphrase(wrapped, c.passphrase), code(c.error))
      await assert.rejects(Keyring.unwrapPassphraseAsync(wrapped, c.passphrase), code(c.error))
    }
  })
}

test('wrap round-trips, sync and async, and another KEK is WRONG_KEK', async () => {
  const keyring = Keyring.generate()
  keyring.rotate()
  const kek = generateKek()
  assert.equal(kek.length, 32)
  const wrapped = keyring.wrap(kek)
  const file = JSON.parse(wrapped)
  assert.equal(file.format, 'chatseal wrapped keyring')
  assert.equal(file.kek_id, kekId(kek))
  assert.equal(file.kdf, undefined)
  // No key of the keyring shows in the file.
  for (const k of plain(keyring).keys) assert.ok(!wrapped.includes(k.key))
  assert.deepEqual(plain(Keyring.unwrap(wrapped, kek.toString('base64'))), plain(keyring))
  assert.deepEqual(plain(await Keyring.unwrapAsync(await keyring.wrapAsync(kek), kek)), plain(keyring))
  const other = generateKek()
  assert.throws(() => Keyring.unwrap(wrapped, other), code('WRONG_KEK'))
  await assert.rejects(Keyring.unwrapAsync(wrapped, other), code('WRONG_KEK'))
  // A plain keyring is not a wrapped one, nor the other way round.
  assert.throws(() => Keyring.unwrap(keyring.toJson(), kek), code('INVALID_KEYRING'))
  assert.throws(() => Keyring.fromJson(wrapped), code('INVALID_KEYRING'))
})

test('a KEK must be 32 bytes or base64 of them', () => {
  const keyring = Keyring.generate()
  for (const bad of [Buffer.alloc(31), Buffer.alloc(33), 'AAAA', 'not base64!']) {
    assert.throws(() => keyring.wrap(bad), code('INVALID_KEYRING'))
    assert.throws(() => kekId(bad), code('INVALID_KEYRING'))
  }
  assert.throws(() => keyring.wrap(42), (err) => err instanceof TypeError && err.code === 'ERR_INVALID_ARG_TYPE')
  assert.throws(() => Keyring.unwrap({}, generateKek()), (err) => err instanceof TypeError)
})

test('a passphrase round-trips with stored argon2id parameters; a wrong one is WRONG_KEK', async () => {
  const keyring = Keyring.generate()
  const wrapped = await keyring.wrapPassphraseAsync('correct horse battery staple')
  const { kdf } = JSON.parse(wrapped)
  assert.equal(kdf.algorithm, 'argon2id')
  assert.ok(kdf.m_cost >= 19456 && kdf.t_cost >= 2, JSON.stringify(kdf))
  assert.equal(b64(kdf.salt).length, 16)
  assert.deepEqual(plain(await Keyring.unwrapPassphraseAsync(wrapped, 'correct horse battery staple')), plain(keyring))
  await assert.rejects(Keyring.unwrapPassphraseAsync(wrapped, 'correct horse battery stapler'), code('WRONG_KEK'))
  // Two wraps of one passphrase use different salts, so different KEKs.
  const again = keyring.wrapPassphrase('correct horse battery staple')
  assert.notEqual(JSON.parse(again).kdf.salt, kdf.salt)
  assert.notEqual(JSON.parse(again).kek_id, JSON.parse(wrapped).kek_id)
})

test('wrapped files are written 0600 and read with the keyring file checks', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatseal-kek-'))
  try {
    const file = path.join(dir, 'keyring.json')
    const keyring = Keyring.generate()
    const kek = generateKek()
    keyring.saveWrappedFile(file, kek)
    assert.equal(fs.statSync(file).mode & 0o777, 0o600)
    assert.deepEqual(plain(Keyring.fromWrappedFile(file, kek)), plain(keyring))
    assert.throws(() => Keyring.fromWrappedFile(file, generateKek()), code('WRONG_KEK'))
    assert.throws(() => Keyring.fromFile(file), code('INVALID_KEYRING'))
    fs.chmodSync(file, 0o644)
    assert.throws(() => Keyring.fromWrappedFile(file, kek), code('INSECURE_KEY_FILE'))
    const byPassphrase = path.join(dir, 'by-passphrase.json')
    keyring.saveWrappedFile(byPassphrase, { passphrase: 'a long enough passphrase' })
    assert.deepEqual(plain(Keyring.fromWrappedFile(byPassphrase, { passphrase: 'a long enough passphrase' })), plain(keyring))
    assert.throws(() => Keyring.fromWrappedFile(byPassphrase, { passphrase: 'another passphrase' }), code('WRONG_KEK'))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
