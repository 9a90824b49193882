'use strict'
// Configuration of the Node server: the same environment variables as the
// Rust server (`chatseal-server --help`), with the same defaults.
const path = require('node:path')

function int(env, name, fallback, min = 1) {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer ≥ ${min}, got ${JSON.stringify(raw)}`)
  return n
}

function bool(env, name, fallback) {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (/^(1|true|yes|on)$/i.test(raw)) return true
  if (/^(0|false|no|off)$/i.test(raw)) return false
  throw new Error(`${name} must be true or false, got ${JSON.stringify(raw)}`)
}

function listen(env) {
  const raw = env.CHATSEAL_LISTEN || (env.PORT ? `127.0.0.1:${env.PORT}` : '127.0.0.1:3000')
  const m = /^\[?([^\]]*)\]?:(\d+)$/.exec(raw)
  if (!m) throw new Error(`CHATSEAL_LISTEN must be host:port, got ${JSON.stringify(raw)}`)
  return { host: m[1], port: Number(m[2]) }
}

/**
 * The largest packet a message of `maxMessageBytes` can make: JSON escapes
 * one byte to at most six (`\u0001`), plus the room, clientId and framing.
 * The packet limit never goes below it, or a valid message would drop the
 * connection without an ack (the Rust server computes the same).
 */
function packetLimit(maxMessageBytes) {
  return maxMessageBytes * 6 + 4096
}

/** Reads the configuration from `env` (process.env by default). */
function load(env = process.env) {
  const dataDir = env.CHATSEAL_DATA_DIR || './data'
  const maxMessageBytes = int(env, 'CHATSEAL_MAX_MESSAGE_BYTES', 64 * 1024)
  return {
    listen: listen(env),
    dataDir,
    keyringFile: env.CHATSEAL_KEYRING_FILE || null,
    keyringEnv: 'CHATSEAL_KEYRING',
    serviceToken: env.CHATSEAL_SERVICE_TOKEN || null,
    maxMessageBytes,
    maxPayloadBytes: Math.max(int(env, 'CHATSEAL_MAX_PAYLOAD_BYTES', 128 * 1024), packetLimit(maxMessageBytes)),
    // Off unless asked for, as on the Rust server (`--allow-guests`).
    allowGuests: bool(env, 'CHATSEAL_ALLOW_GUESTS', false),
    ratePerSec: int(env, 'CHATSEAL_RATE_PER_SEC', 20),
    rateBurst: int(env, 'CHATSEAL_RATE_BURST', 40),
    historyLimit: int(env, 'CHATSEAL_HISTORY_LIMIT', 500),
    // Packets queued for one socket before it is disconnected as too slow.
    socketBuffer: Math.max(16, int(env, 'CHATSEAL_SOCKET_BUFFER', 4096)),
    // Memory bounds of the in-process history (this server keeps no database).
    historyPerRoom: int(env, 'CHATSEAL_HISTORY_PER_ROOM', 1000),
    maxRooms: int(env, 'CHATSEAL_MAX_ROOMS', 10000),
    // ...and in bytes (envelopes and their fields), per room and in all:
    // counting messages alone let 64 KiB messages fill the heap.
    historyRoomBytes: int(env, 'CHATSEAL_HISTORY_ROOM_BYTES', 8 * 1024 * 1024),
    historyBytes: int(env, 'CHATSEAL_HISTORY_BYTES', 64 * 1024 * 1024),
    // The tutorial's architecture: seal through a remote /encrypt service.
    encryptionUrl: env.CHATSEAL_ENCRYPTION_URL || null,
    encryptionToken: env.CHATSEAL_ENCRYPTION_TOKEN || null,
    clientDir: env.CHATSEAL_CLIENT_DIR || path.join(__dirname, '..', 'client', 'dist'),
    // A bare Socket.IO relay with no encryption and no store: the upper
    // bound the benchmarks compare against. Never for real use.
    plain: bool(env, 'CHATSEAL_PLAIN', false),
  }
}

module.exports = { load, packetLimit }
