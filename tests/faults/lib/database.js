'use strict'
// A fresh PostgreSQL database for one test file, on CHATSEAL_TEST_PG (the
// local server's `test` database as admin by default), dropped afterwards.
const path = require('node:path')

// pg is installed with the conformance suite (tests/conformance).
const { Client } = require(require.resolve('pg', { paths: [path.join(__dirname, '..', '..', 'conformance')] }))

const ADMIN = process.env.CHATSEAL_TEST_PG || 'postgres://root@127.0.0.1:5432/test'

/** Resolves to { url, drop() }. */
async function withDatabase() {
  const admin = new Client({ connectionString: ADMIN })
  await admin.connect()
  const name = `chatseal_faults_${process.pid}_${Date.now()}`
  await admin.query(`CREATE DATABASE ${name}`)
  const url = new URL(ADMIN)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await admin.end()
    },
  }
}

module.exports = { withDatabase }
