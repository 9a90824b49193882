'use strict'
// The `chatseal` package: the generated loader (index.js) finds the native
// addon; this file only turns napi-rs's argument-conversion failures into
// the `TypeError`s a Node.js API throws for wrong argument types.
//
// Engine failures keep their stable `code` (`BAD_TAG`, `UNKNOWN_KEY`, …, see
// `errorCodes()`); a wrong argument type becomes a TypeError with
// `code === 'ERR_INVALID_ARG_TYPE'`, as in Node's own APIs.

// Without a built addon the generated loader's error blames npm's optional
// dependencies; say what is actually missing and how to get it.
const native = (() => {
  try {
    return require('./index.js')
  } catch (err) {
    const built = require('node:fs')
      .readdirSync(__dirname)
      .some((f) => /^chatseal\..+\.node$/.test(f))
    if (built) throw err
    throw new Error(
      `chatseal: the native addon is not built (no chatseal.*.node in ${__dirname}). ` +
        'Its install script builds it with Rust (cargo) when installed from a clone; npm 11 runs it ' +
        'for a tarball only once approved: `npm install-scripts approve chatseal && npm rebuild chatseal`. ' +
        'In a clone: `cd js && npm run build`.',
      { cause: err },
    )
  }
})()

// The napi statuses that mean "this JavaScript value has the wrong type".
const TYPE_STATUSES = new Set([
  'InvalidArg',
  'ObjectExpected',
  'StringExpected',
  'NameExpected',
  'FunctionExpected',
  'NumberExpected',
  'BooleanExpected',
  'ArrayExpected',
  'BigintExpected',
  'DateExpected',
  'ArrayBufferExpected',
  'DetachableArraybufferExpected',
])

function asTypeError(err) {
  if (err === null || typeof err !== 'object' || !TYPE_STATUSES.has(err.code)) return err
  const typeError = new TypeError(err.message)
  typeError.code = 'ERR_INVALID_ARG_TYPE'
  return typeError
}

function typed(fn) {
  return function (...args) {
    try {
      return fn.apply(this, args)
    } catch (err) {
      throw asTypeError(err)
    }
  }
}

// Prototype methods are wrapped in place, once at load, so instances stay
// the native classes' own. The native statics cannot be redefined, so each
// class is exported as a facade function that shares the native prototype
// (`instanceof` holds for every instance, however it was made) and carries
// wrapped statics.
function wrapPrototype(proto) {
  for (const name of Object.getOwnPropertyNames(proto)) {
    const desc = Object.getOwnPropertyDescriptor(proto, name)
    if (name !== 'constructor' && typeof desc.value === 'function') {
      Object.defineProperty(proto, name, { ...desc, value: typed(desc.value) })
    }
  }
}

function facade(NativeClass, construct) {
  wrapPrototype(NativeClass.prototype)
  const Facade = {
    [NativeClass.name]: function (...args) {
      if (!new.target) throw new TypeError(`Class constructor ${NativeClass.name} cannot be invoked without 'new'`)
      return construct(...args)
    },
  }[NativeClass.name]
  Facade.prototype = NativeClass.prototype
  for (const name of Object.getOwnPropertyNames(NativeClass)) {
    const value = NativeClass[name]
    if (typeof value === 'function' && name !== 'prototype') Facade[name] = typed(value.bind(NativeClass))
  }
  return Facade
}

function invalidArg(message) {
  const err = new TypeError(message)
  err.code = 'ERR_INVALID_ARG_TYPE'
  return err
}

// Buffers made by the addon cost a fresh ArrayBuffer each (over a
// microsecond); Buffer.allocUnsafe takes small ones from Node's pool. So the
// Buffer forms allocate here and let the engine write in place.
const OVERHEAD = 34 // header (18) + tag (16)
const { encryptInto, decryptInto } = native.Sealer.prototype
const byteLength = (v) => (typeof v === 'string' ? Buffer.byteLength(v) : v?.byteLength)

function encryptBuffer(plaintext, room, context) {
  const len = byteLength(plaintext)
  if (typeof len !== 'number') return encryptInto.call(this, plaintext, room, context, null) // throws the TypeError
  const out = Buffer.allocUnsafe(len + OVERHEAD)
  encryptInto.call(this, plaintext, room, context, out)
  return out
}

function decryptBuffer(envelope, room, context) {
  const binary = binaryOf(envelope)
  if (binary !== envelope) {
    // Decoded here: opened in place (its tail beyond the plaintext wiped).
    const len = decryptInPlace.call(this, binary, room, context)
    binary.fill(0, len)
    return binary.subarray(0, len)
  }
  // A base64 text of n characters decodes to at most 3n/4 bytes.
  const len = typeof envelope === 'string' ? (envelope.length >>> 2) * 3 + 3 : envelope?.byteLength
  if (typeof len !== 'number') return decryptInto.call(this, envelope, room, context, null) // throws the TypeError
  const out = Buffer.allocUnsafe(len)
  return out.subarray(0, decryptInto.call(this, envelope, room, context, out))
}

// From 1 KiB on, Node's own base64 (SIMD) beats the engine's by up to 4×
// at 1 MiB, so the text forms go through the Buffer forms. The text is
// checked to be canonical standard base64 exactly as the engine checks it
// (Node's decoder alone would accept whitespace and the URL-safe alphabet),
// and the plaintext to be UTF-8; any failure is left to the engine to name.
const TEXT_VIA_BUFFER = 1024
const { encrypt: nativeEncrypt, decrypt: nativeDecrypt } = native.Sealer.prototype
const { isUtf8 } = require('node:buffer')

function encrypt(plaintext, room, context) {
  const len = byteLength(plaintext)
  if (typeof len === 'number' && len >= TEXT_VIA_BUFFER) {
    return encryptBuffer.call(this, plaintext, room, context).toString('base64')
  }
  return nativeEncrypt.call(this, plaintext, room, context)
}

// The binary form of a long, canonical text envelope; anything else as given.
function binaryOf(envelope) {
  if (typeof envelope !== 'string' || envelope.length < TEXT_VIA_BUFFER) return envelope
  return canonicalBase64(envelope) ?? envelope
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

// The bytes of `text` if it is canonical standard base64 (docs/format.md §3),
// else null; in one decoding pass and two memchr-speed scans, where
// re-encoding and comparing cost as much again as the decoding. Node's
// decoder skips what is not base64 (whitespace, '*', a NUL, non-ASCII) and
// stops at a '=', so any of those leaves fewer bytes than the length says;
// it also takes the URL-safe '-' and '_', looked for apart; and a canonical
// last character before padding has no bits beyond the data. Checked
// against the re-encoding definition on random mutations in api.test.js.
function canonicalBase64(text) {
  const n = text.length
  if (n === 0 || n % 4 !== 0) return null
  const pad = text.charCodeAt(n - 1) === 61 ? (text.charCodeAt(n - 2) === 61 ? 2 : 1) : 0
  const binary = Buffer.from(text, 'base64')
  if (binary.length !== (n / 4) * 3 - pad) return null
  if (text.includes('-') || text.includes('_')) return null
  if (pad !== 0 && (BASE64.indexOf(text[n - 1 - pad]) & (pad === 1 ? 3 : 15)) !== 0) return null
  return binary
}

const { decryptInPlace } = native.Sealer.prototype

function decrypt(envelope, room, context) {
  const binary = binaryOf(envelope)
  if (binary !== envelope) {
    // The decoded bytes are ours: opened where they are, no second buffer.
    // A failure throws the engine's error (the same as for the text: the
    // decoding was checked canonical); not UTF-8 is left to the engine to
    // name, from the text (below).
    let text = null
    try {
      const opened = binary.subarray(0, decryptInPlace.call(this, binary, room, context))
      text = isUtf8(opened) ? opened.toString('utf8') : null
    } finally {
      binary.fill(0)
    }
    if (text !== null) return text
  }
  return nativeDecrypt.call(this, envelope, room, context)
}

Object.assign(native.Sealer.prototype, { encryptBuffer, decryptBuffer, encrypt, decrypt })

const Keyring = facade(native.Keyring, () => {
  throw invalidArg(
    'make a Keyring with Keyring.generate(), fromJson(), fromFile(), fromEnv(), loadOrGenerate(), unwrap() or fromWrappedFile()',
  )
})

// `new Sealer(notAKeyring)` would fail inside the native constructor with a
// plain Error, so the argument is checked here.
const Sealer = facade(native.Sealer, (keyring) => {
  if (!(keyring instanceof Keyring)) throw invalidArg('Sealer needs a Keyring')
  return new native.Sealer(keyring)
})

exports.Keyring = Keyring
exports.Sealer = Sealer
exports.chatContext = typed(native.chatContext)
exports.validateChatRoom = typed(native.validateChatRoom)
exports.generateKek = native.generateKek
exports.kekId = typed(native.kekId)
exports.errorCodes = native.errorCodes
exports.version = native.version
