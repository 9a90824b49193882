'use strict'
// Two Rust servers of one cluster: a fresh PostgreSQL database, Redis on
// 127.0.0.1, one shared keyring. stop() removes all of it.
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Client } = require('pg')
const { start } = require('../../conformance/lib/servers')

const ADMIN = process.env.CHATSEAL_TEST_PG || 'postgres://root@127.0.0.1:5432/test'
const REDIS_PORT = Number(process.env.CHATSEAL_TEST_REDIS_PORT || 6379)

async function startCluster({ extraArgs = [], limits } = {}) {
  const admin = new Client({ connectionString: ADMIN })
  await admin.connect()
  const dbName = `chatseal_sdk_${process.pid}_${Date.now()}`
  await admin.query(`CREATE DATABASE ${dbName}`)
  const url = new URL(ADMIN)
  url.pathname = `/${dbName}`
  const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatseal-sdk-cluster-'))
  const keyringFile = path.join(keyDir, 'keyring.json')
  const keyring = { primary: 1, min_decrypt: 1, keys: [{ id: 1, key: crypto.randomBytes(32).toString('base64') }] }
  fs.writeFileSync(keyringFile, JSON.stringify(keyring), { mode: 0o600 })
  const env = {
    CHATSEAL_KEYRING_FILE: keyringFile,
    DATABASE_URL: url.toString(),
    REDIS_URL: `redis://127.0.0.1:${REDIS_PORT}`,
    CHATSEAL_REDIS_CHANNEL: `chatseal-sdk-${process.pid}-${Date.now()}`,
  }
  const servers = []
  const stop = async () => {
    for (const s of servers) await s.stop()
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)
    await admin.end()
    fs.rmSync(keyDir, { recursive: true, force: true })
  }
  try {
    for (let i = 0; i < 2; i++) servers.push(await start('rust', { env, extraArgs, limits }))
    // Both subscribed to Redis before anyone talks.
    for (const s of servers) {
      const deadline = Date.now() + 10000
      for (;;) {
        const h = await fetch(s.url + '/healthz')
          .then((r) => r.json())
          .catch(() => ({}))
        if (h.redis === 'ok') break
        if (Date.now() > deadline) throw new Error('redis subscription did not come up')
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { servers, stop }
}

module.exports = { startCluster }
