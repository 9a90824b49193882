'use strict'
// Runs the conformance suite against each server:
//   node run.js [rust] [rust-pg] [cluster] [node] [node-remote] [node-cpp]   (all by default)
// The guest-mode protocol suite runs against every server; accounts.test.js
// and crash.test.js exercise what only the Rust server has (accounts, a
// store that survives SIGKILL), on SQLite and on PostgreSQL. For rust-pg each
// test file gets a fresh database on CHATSEAL_TEST_PG (default: the local
// server's `test` database as admin), dropped afterwards.
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const { Client } = require('pg')

const RUST = ['guest.test.js', 'accounts.test.js', 'epochs.test.js', 'crash.test.js', 'rotation.test.js', 'slow-reader.test.js', 'keys.test.js']
const FILES = {
  rust: [...RUST, 'registration.test.js'],
  // Two servers sharing PostgreSQL and Redis (the test makes its own database).
  cluster: ['cluster.test.js'],
  'rust-pg': RUST,
  node: ['guest.test.js', 'rotation.test.js', 'slow-reader.test.js'],
  'node-remote': ['guest.test.js'],
  // js/server.js sealing through the C++ example microservice (c-abi/examples).
  'node-cpp': ['guest.test.js'],
}
const ADMIN = process.env.CHATSEAL_TEST_PG || 'postgres://root@127.0.0.1:5432/test'

async function withDatabase(fn) {
  const admin = new Client({ connectionString: ADMIN })
  await admin.connect()
  const name = `chatseal_conf_${process.pid}_${Date.now()}`
  await admin.query(`CREATE DATABASE ${name}`)
  try {
    const url = new URL(ADMIN)
    url.pathname = `/${name}`
    return await fn(url.toString())
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
  }
}

function runFile(target, file, env) {
  // --test-force-exit: a test that fails with a socket still open must not
  // keep the run waiting.
  const r = spawnSync(process.execPath, ['--test', '--test-force-exit', path.join(__dirname, file)], {
    stdio: 'inherit',
    env: { ...process.env, ...env, CHATSEAL_TARGET: target },
  })
  return r.status === 0
}

async function main() {
  const targets = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(FILES)
  const failures = []
  for (const target of targets) {
    if (!FILES[target]) {
      console.error(`unknown target ${target}; use one of ${Object.keys(FILES).join(', ')}`)
      process.exit(2)
    }
    for (const file of FILES[target]) {
      console.log(`\n== conformance: ${file} against ${target} ==`)
      const ok =
        target === 'rust-pg'
          ? await withDatabase((url) => runFile(target, file, { CHATSEAL_CONFORMANCE_PG_URL: url }))
          : runFile(target, file, {})
      if (!ok) failures.push(`${file} against ${target}`)
    }
  }
  if (failures.length) {
    console.error(`\nconformance failures:\n  ${failures.join('\n  ')}`)
    process.exit(1)
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
