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

/**
 * A message's clientId: a UUID version 7 (RFC 9562) — 48 bits of Unix
 * milliseconds, then 74 random bits. Time-ordered on purpose: the server
 * keeps an index on (room, sender, clientId), and random ids (v4) put each
 * message in a random page of it, so every commit rewrote a page per
 * message; in time order they append (docs/benchmarks.md, "clientIds":
 * 125–131 k → 162–185 k deliveries/s at 10 clients).
 */
function messageId(now = Date.now()) {
  const b = webcrypto().getRandomValues(new Uint8Array(16))
  let ms = Math.max(0, Math.floor(now))
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256
    ms = Math.floor(ms / 256)
  }
  b[6] = (b[6] & 0x0f) | 0x70
  b[8] = (b[8] & 0x3f) | 0x80
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

module.exports = { webcrypto, messageId }
