'use strict'
// Where the Node server's keyring comes from: the variables and files of
// the Rust server (docs/operations.md, "Keys"). A keyring file or variable
// may be wrapped under a key-encryption key (docs/format.md §8), opened with
// CHATSEAL_KEK_FILE, CHATSEAL_KEK, CHATSEAL_KEK_PASSPHRASE or
// CHATSEAL_KEK_PASSPHRASE_FILE, or, for the data-dir keyring, the
// development KEK file beside it. A new development keyring is wrapped
// under <data-dir>/kek (made 0600) unless a KEK is configured. A plain
// keyring loads with a warning; a PKCS#11 token is the Rust server's alone.
const fs = require('node:fs')
const path = require('node:path')
const { Keyring, generateKek, kekId } = require('..')

const WRAPPED_FORMAT = 'chatseal wrapped keyring'
const MAX_SECRET_FILE = 4096

function secretFileLine(file, what) {
  const fd = fs.openSync(file, 'r')
  try {
    const st = fs.fstatSync(fd)
    if (st.mode & 0o077) {
      throw new Error(`the ${what} file ${file} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`)
    }
    if (st.size > MAX_SECRET_FILE) throw new Error(`the ${what} file ${file} is larger than ${MAX_SECRET_FILE} bytes`)
    return fs.readFileSync(fd, 'utf8').split(/\r?\n/)[0]
  } finally {
    fs.closeSync(fd)
  }
}

/** The configured KEK as `{ kek | passphrase, describe }`, or null. */
function configuredKek(env) {
  const found = []
  if (env.CHATSEAL_KEK_FILE) found.push({ kek: () => secretFileLine(env.CHATSEAL_KEK_FILE, 'KEK'), describe: `KEK file ${env.CHATSEAL_KEK_FILE}` })
  if (env.CHATSEAL_KEK) found.push({ kek: () => env.CHATSEAL_KEK, describe: '$CHATSEAL_KEK' })
  if (env.CHATSEAL_KEK_PASSPHRASE) found.push({ passphrase: () => env.CHATSEAL_KEK_PASSPHRASE, describe: 'the passphrase in $CHATSEAL_KEK_PASSPHRASE' })
  if (env.CHATSEAL_KEK_PASSPHRASE_FILE) {
    const file = env.CHATSEAL_KEK_PASSPHRASE_FILE
    found.push({ passphrase: () => secretFileLine(file, 'passphrase'), describe: `the passphrase in ${file}` })
  }
  if (env.CHATSEAL_PKCS11_MODULE) {
    throw new Error('CHATSEAL_PKCS11_MODULE: the Node server does not open keyrings on a PKCS#11 token; run the Rust server, or give it a KEK file')
  }
  if (found.length > 1) throw new Error(`more than one key-encryption key is configured (${found.map((k) => k.describe).join(', ')}): keep one`)
  return found[0] || null
}

/** `kek` as the addon takes it: a KEK, or `{ passphrase }`. */
function secretOf(kek) {
  return kek.kek ? kek.kek() : { passphrase: kek.passphrase() }
}

function isWrapped(text) {
  try {
    return JSON.parse(text).format === WRAPPED_FORMAT
  } catch {
    return false
  }
}

function needKek(what, text) {
  let needs = 'its KEK (CHATSEAL_KEK_FILE or CHATSEAL_KEK)'
  try {
    const file = JSON.parse(text)
    if (file.kdf) needs = 'its passphrase (CHATSEAL_KEK_PASSPHRASE or CHATSEAL_KEK_PASSPHRASE_FILE)'
    if (file.token) needs = 'a PKCS#11 token, which only the Rust server opens'
    needs += ` (KEK ${file.kek_id})`
  } catch {}
  return new Error(`${what} is a wrapped keyring and no key-encryption key is configured: give ${needs}. A new keyring is never made in its place`)
}

/**
 * Loads the keyring `config` names (or creates the development one);
 * `{ keyring, source, warning?, created? }`. `env` is process.env.
 */
function loadKeyring(config, env = process.env) {
  const configured = configuredKek(env)
  const plain = (keyring, source) => {
    if (configured) {
      throw new Error(`${source} is a plain keyring, but a key-encryption key is configured (${configured.describe}): wrap it with \`chatseal-server keys wrap\`, or unset the KEK settings`)
    }
    return { keyring, source, warning: `the keyring in ${source} is plain JSON: whoever copies it reads every message; wrap it with \`chatseal-server keys wrap\`` }
  }
  const envText = env[config.keyringEnv]
  if (envText !== undefined) {
    const source = `$${config.keyringEnv}`
    const trimmed = envText.trim()
    const json = trimmed.startsWith('{') ? trimmed : Buffer.from(trimmed, 'base64').toString('utf8')
    if (!isWrapped(json)) return plain(Keyring.fromEnv(config.keyringEnv), source)
    if (!configured) throw needKek(source, json)
    const secret = secretOf(configured)
    const keyring = secret.passphrase !== undefined ? Keyring.unwrapPassphrase(json, secret.passphrase) : Keyring.unwrap(json, secret)
    return { keyring, source }
  }
  const dev = !config.keyringFile
  const file = config.keyringFile || path.join(config.dataDir, 'keyring.json')
  const devKek = path.join(config.dataDir, 'kek')
  const kek = configured || (dev && fs.existsSync(devKek) ? { kek: () => secretFileLine(devKek, 'KEK'), describe: `the development KEK file ${devKek}` } : null)
  if (fs.existsSync(file) || !dev) {
    const text = fs.readFileSync(file, 'utf8')
    if (!isWrapped(text)) return plain(Keyring.fromFile(file), file)
    if (!kek) throw needKek(file, text)
    return { keyring: Keyring.fromWrappedFile(file, secretOf(kek)), source: `${file} (wrapped, ${kek.describe})` }
  }
  // The development keyring: wrapped from the start.
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 })
  let under = kek
  if (!under) {
    fs.writeFileSync(devKek, `${generateKek().toString('base64')}\n`, { mode: 0o600, flag: 'wx' })
    under = { kek: () => secretFileLine(devKek, 'KEK'), describe: `the development KEK file ${devKek}` }
  }
  const keyring = Keyring.generate()
  const secret = secretOf(under)
  keyring.saveWrappedFile(file, secret)
  const id = under.kek ? ` ${kekId(secret)}` : ''
  return {
    keyring,
    source: `${file} (wrapped, ${under.describe})`,
    created: `created a new development keyring at ${file}, wrapped under the key-encryption key${id} in ${under.describe}; back both up, apart (a data dir without the KEK opens nothing), or set CHATSEAL_KEYRING_FILE / CHATSEAL_KEYRING and a KEK in production`,
  }
}

module.exports = { loadKeyring, configuredKek }
