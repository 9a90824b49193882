'use strict'
// Runs the SDK suite (chatseal/client in Node) against each target:
//   node run.js [rust] [node] [cluster]   (all by default)
// sdk.test.js runs against both servers in guest mode; restart.test.js needs
// a store that survives SIGKILL; accounts, expiry and readme need
// accounts (Rust); cluster.test.js two Rust servers with PostgreSQL and Redis.
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const FILES = {
  rust: ['sdk.test.js', 'ratelimit.test.js', 'restart.test.js', 'accounts.test.js', 'expiry.test.js', 'readme.test.js'],
  node: ['sdk.test.js'],
  cluster: ['cluster.test.js'],
}

const targets = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(FILES)
const failures = []
for (const target of targets) {
  if (!FILES[target]) {
    console.error(`unknown target ${target}; use one of ${Object.keys(FILES).join(', ')}`)
    process.exit(2)
  }
  for (const file of FILES[target]) {
    console.log(`\n== sdk: ${file} against ${target} ==`)
    const r = spawnSync(process.execPath, ['--test', '--test-force-exit', path.join(__dirname, file)], {
      stdio: 'inherit',
      env: { ...process.env, CHATSEAL_TARGET: target === 'cluster' ? 'rust' : target },
    })
    if (r.status !== 0) failures.push(`${file} against ${target}`)
  }
}
if (failures.length) {
  console.error(`\nsdk failures:\n  ${failures.join('\n  ')}`)
  process.exit(1)
}
