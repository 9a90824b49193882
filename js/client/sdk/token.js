'use strict'
// Reads a session token's claims (sub, iat, exp) without checking it: the
// server checks it; the client only needs to know when to refresh it.

function claims(token) {
  try {
    const part = String(token).split('.')[1]
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/')
    const json = decodeURIComponent(
      [...atob(b64 + '==='.slice((b64.length + 3) % 4))].map((c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join(''),
    )
    const value = JSON.parse(json)
    return value && typeof value === 'object' ? value : {}
  } catch {
    return {}
  }
}

/** The token's `exp` in ms since the epoch, or null. */
function expiresAt(token) {
  const { exp } = claims(token)
  return typeof exp === 'number' ? exp * 1000 : null
}

function issuedAt(token) {
  const { iat } = claims(token)
  return typeof iat === 'number' ? iat * 1000 : null
}

function subject(token) {
  const { sub } = claims(token)
  return typeof sub === 'string' ? sub : null
}

module.exports = { expiresAt, issuedAt, subject }
