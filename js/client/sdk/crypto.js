'use strict'
// WebCrypto wherever the SDK runs: the global one in browsers and Node 19+;
// node:crypto's in Node 18, where it is not global by default (a file that
// browser bundles leave out: package.json's "browser" field).

function webcrypto() {
  if (globalThis.crypto && globalThis.crypto.subtle) return globalThis.crypto
  const node = require('./node-webcrypto')
  if (node && node.subtle) return node
  throw new Error('no WebCrypto: browsers expose it only on https:// or localhost pages')
}

/** A random UUID v4 (a message's clientId). */
function randomId() {
  const c = webcrypto()
  if (typeof c.randomUUID === 'function') return c.randomUUID()
  const b = c.getRandomValues(new Uint8Array(16))
  b[6] = (b[6] & 0x0f) | 0x40
  b[8] = (b[8] & 0x3f) | 0x80
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

module.exports = { webcrypto, randomId }
