'use strict'
// npm `install` script: makes sure the native addon exists.
//
// * A package with a built `chatseal.*.node` (a packed tarball made after
//   `npm run build`) needs nothing.
// * Installed from a clone (`npm install path/to/chatseal/js`), the Rust
//   sources are beside it: build the addon with cargo, release mode, and put
//   it where the generated loader (index.js) looks.
// * Developing inside js/ (`npm ci` there), `npm run build` makes the addon
//   with napi-rs (which also regenerates index.js and index.d.ts): skip.
//
// Exits non-zero with one clear line when the addon can be neither found nor
// built, so the install fails instead of `require('chatseal')` later.
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const pkg = path.resolve(__dirname, '..')
const manifest = path.join(pkg, '..', 'node-binding', 'Cargo.toml')

function fail(line) {
  console.error(`chatseal: ${line}`)
  process.exit(1)
}

function addonName() {
  const { platform, arch } = process
  if (platform !== 'linux') return `chatseal.${platform}-${arch}.node`
  const musl = !process.report?.getReport().header?.glibcVersionRuntime
  return `chatseal.linux-${arch}-${musl ? 'musl' : 'gnu'}.node`
}

function main() {
  if (fs.readdirSync(pkg).some((f) => /^chatseal\..+\.node$/.test(f))) return
  if (process.env.INIT_CWD && path.resolve(process.env.INIT_CWD) === pkg) {
    console.log('chatseal: developing in js/; `npm run build` builds the addon')
    return
  }
  if (!fs.existsSync(manifest)) {
    fail(
      `no built addon in ${pkg} and no Rust sources beside it; install from a clone ` +
        '(npm install path/to/chatseal/js) or from a tarball packed after `npm run build`',
    )
  }
  const cargo = process.env.CARGO || 'cargo'
  if (spawnSync(cargo, ['--version'], { stdio: 'ignore' }).status !== 0) {
    fail('building the native addon needs Rust (cargo); install it from https://rustup.rs and run `npm rebuild chatseal`')
  }
  console.log('chatseal: building the native addon from source with cargo (a few minutes the first time)')
  const build = spawnSync(
    cargo,
    ['build', '--release', '--locked', '--manifest-path', manifest, '--message-format=json-render-diagnostics'],
    { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  )
  if (build.status !== 0) fail(`cargo build of ${manifest} failed (its errors are above)`)
  // The cdylib cargo made, wherever CARGO_TARGET_DIR put it.
  const lib = build.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l))
    .filter((m) => m.reason === 'compiler-artifact' && m.target.name === 'chatseal_node')
    .flatMap((m) => m.filenames)
    .find((f) => /\.(so|dylib|dll)$/.test(f))
  if (!lib) fail('cargo built no chatseal_node library')
  fs.copyFileSync(lib, path.join(pkg, addonName()))
  console.log(`chatseal: built ${addonName()}`)
}

main()
