'use strict'
// Runs the conformance suite against each server:
// `node run.js [rust] [node] [node-remote]` (all three by default).
// The guest-mode protocol suite runs against both; accounts.test.js and
// crash.test.js exercise what only the Rust server has (accounts, a store
// that survives SIGKILL).
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const FILES = {
  rust: ['guest.test.js', 'accounts.test.js', 'crash.test.js'],
  node: ['guest.test.js'],
  'node-remote': ['guest.test.js'],
}
const targets = process.argv.slice(2).length ? process.argv.slice(2) : ['rust', 'node', 'node-remote']
let failed = false
for (const target of targets) {
  if (!FILES[target]) {
    console.error(`unknown target ${target}; use rust or node`)
    process.exit(2)
  }
  console.log(`\n== conformance: ${target} server ==`)
  const files = FILES[target].map((f) => path.join(__dirname, f))
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...files], {
    stdio: 'inherit',
    env: { ...process.env, CHATSEAL_TARGET: target },
  })
  if (r.status !== 0) failed = true
}
process.exit(failed ? 1 : 0)
