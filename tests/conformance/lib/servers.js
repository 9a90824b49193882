'use strict'
// Starts a chat server on a free loopback port, in its own data directory,
// and stops it again. Both servers print their address when listening; that
// line is how the suite learns the port.
const { spawn, execFile } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')

const ROOT = path.resolve(__dirname, '..', '..', '..')

// The limits the suite checks, set the same way on both servers.
const LIMITS = { ratePerSec: 20, rateBurst: 30, maxMessageBytes: 64 * 1024 }
// The token-signing secret's bytes; servers take it as base64 (the form of
// data/jwt-secret), tests sign with the bytes.
const JWT_SECRET = Buffer.from('conformance-suite-secret-0123456789abcdef')

function rustBin() {
  const target = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target')
  return process.env.CHATSEAL_SERVER_BIN || path.join(target, 'debug', 'chatseal-server')
}

function rustCommand(dataDir, extra, limits, listen, guests) {
  const bin = rustBin()
  const args = [
    '--listen', listen,
    '--data-dir', dataDir,
    ...(guests ? ['--allow-guests'] : []),
    '--rate-per-sec', String(limits.ratePerSec),
    '--rate-burst', String(limits.rateBurst),
    ...extra,
  ]
  const env = {
    CHATSEAL_JWT_SECRET: JWT_SECRET.toString('base64'),
    RUST_LOG: 'warn,chatseal_server=info',
    NO_COLOR: '1',
    // The suite registers and logs in many accounts from one address; the
    // login throttle itself is tested in tests/abuse (which sets its own).
    CHATSEAL_LOGIN_IP_BURST: '10000',
    CHATSEAL_LOGIN_ACCOUNT_BURST: '10000',
  }
  return { cmd: bin, args, env }
}

function nodeCommand(dataDir, extra, limits, listen, guests) {
  return {
    cmd: process.execPath,
    args: [path.join(ROOT, 'js', 'server.js'), ...extra],
    env: {
      CHATSEAL_LISTEN: listen,
      CHATSEAL_DATA_DIR: dataDir,
      // Given explicitly: the default is off, as on the Rust server.
      ...(guests ? { CHATSEAL_ALLOW_GUESTS: 'true' } : {}),
      CHATSEAL_RATE_PER_SEC: String(limits.ratePerSec),
      CHATSEAL_RATE_BURST: String(limits.rateBurst),
    },
  }
}

/** The token /encrypt and /decrypt of `server` require: generated into its data dir. */
function serviceToken(server) {
  return fs.readFileSync(path.join(server.dataDir, 'service-token'), 'utf8').trim()
}

/** The token the publish API of `server` requires: generated into its data dir. */
function publishToken(server) {
  return fs.readFileSync(path.join(server.dataDir, 'publish-token'), 'utf8').trim()
}

/**
 * 'node-remote': js/server.js sealing through a Rust server's /encrypt over
 * HTTP (the tutorial's architecture). Both share one keyring file (and its KEK), so the
 * Node server hands out room keys that open what the service sealed.
 */
async function startRemote(options) {
  const service = await start('rust', { limits: options.limits })
  try {
    const front = await start('node', {
      ...options,
      env: {
        ...options.env,
        CHATSEAL_ENCRYPTION_URL: service.url,
        CHATSEAL_ENCRYPTION_TOKEN: serviceToken(service),
        CHATSEAL_KEYRING_FILE: path.join(service.dataDir, 'keyring.json'),
        // The service's development keyring is wrapped under the KEK beside it.
        CHATSEAL_KEK_FILE: path.join(service.dataDir, 'kek'),
      },
    })
    const stopFront = front.stop
    front.service = service
    front.stop = async (signal) => {
      const exit = await stopFront(signal)
      await service.stop()
      return exit
    }
    return front
  } catch (err) {
    await service.stop()
    throw err
  }
}

/**
 * 'node-cpp': js/server.js sealing through the C++ example microservice
 * (c-abi/examples/microservice.cpp, built by `make -C c-abi build/microservice`
 * or named by CHATSEAL_MICROSERVICE_BIN) over HTTP, with a service token.
 * Both read one keyring file, as in 'node-remote'.
 */
async function startCpp(options) {
  const bin = process.env.CHATSEAL_MICROSERVICE_BIN || path.join(ROOT, 'c-abi', 'build', 'microservice')
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run make -C c-abi build/microservice`)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatseal-cpp-'))
  const keyring = path.join(dir, 'keyring.json')
  const key = crypto.randomBytes(32).toString('base64')
  fs.writeFileSync(keyring, JSON.stringify({ primary: 1, min_decrypt: 1, keys: [{ id: 1, key }] }), { mode: 0o600 })
  const token = crypto.randomBytes(24).toString('hex')
  const service = await launch('microservice', { cmd: bin, args: [keyring], env: { CHATSEAL_SERVICE_TOKEN: token } })
  try {
    const front = await start('node', {
      ...options,
      env: {
        ...options.env,
        CHATSEAL_ENCRYPTION_URL: service.url,
        CHATSEAL_ENCRYPTION_TOKEN: token,
        CHATSEAL_KEYRING_FILE: keyring,
      },
    })
    const stopFront = front.stop
    front.service = service
    front.stop = async (signal) => {
      const exit = await stopFront(signal)
      await service.stop()
      fs.rmSync(dir, { recursive: true, force: true })
      return exit
    }
    return front
  } catch (err) {
    await service.stop()
    fs.rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

/**
 * Starts `target` ('rust', 'rust-pg', 'node', 'node-remote' or 'node-cpp'); resolves to { url, stop, log, dataDir }.
 * A given `dataDir` is reused (a restart); otherwise a fresh one is made.
 * `listen` defaults to a free port; a restart may pass the old address.
 * `wrap(cmd, args, dataDir)` may return another [cmd, args] to run the server under.
 * `guests: false` starts it without guests (each server's default).
 */
async function start(
  target,
  { extraArgs = [], env = {}, dataDir, limits = LIMITS, listen = '127.0.0.1:0', wrap, guests = true } = {},
) {
  if (target === 'node-remote') return startRemote({ extraArgs, env, dataDir, limits, guests })
  if (target === 'node-cpp') return startCpp({ extraArgs, env, dataDir, limits, guests })
  if (target === 'rust-pg') {
    // run.js made a database for this test file and passes its URL.
    const url = process.env.CHATSEAL_CONFORMANCE_PG_URL
    if (!url) throw new Error('rust-pg needs CHATSEAL_CONFORMANCE_PG_URL (run it through run.js)')
    return start('rust', { extraArgs, env: { ...env, DATABASE_URL: url }, dataDir, limits, listen, wrap, guests })
  }
  dataDir = dataDir || fs.mkdtempSync(path.join(os.tmpdir(), `chatseal-${target}-`))
  const spec =
    target === 'rust'
      ? rustCommand(dataDir, extraArgs, limits, listen, guests)
      : nodeCommand(dataDir, extraArgs, limits, listen, guests)
  return { ...(await launch(target, spec, env, wrap && ((cmd, args) => wrap(cmd, args, dataDir)))), dataDir }
}

/**
 * Spawns `spec` ({ cmd, args, env }) and resolves once it prints the address
 * it listens on; `wrap(cmd, args)` may return another [cmd, args].
 */
async function launch(target, spec, env = {}, wrap) {
  // Nothing of the caller's own chatseal configuration leaks in.
  const inherited = { ...process.env }
  for (const name of Object.keys(inherited)) {
    if (name.startsWith('CHATSEAL_') || name === 'DATABASE_URL' || name === 'PORT') delete inherited[name]
  }
  const childEnv = { ...inherited, ...spec.env, ...env }
  // `wrap(cmd, args, dataDir)` -> [cmd, args]: runs the server under another
  // command (the fault tests put it in a namespace with a small disk).
  const [cmd, args] = wrap ? wrap(spec.cmd, spec.args) : [spec.cmd, spec.args]
  const child = spawn(cmd, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  const log = []
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${target} server did not start:\n${log.join('\n')}`)), 30000)
    const onLine = (line) => {
      log.push(line)
      const m = /addr=(\S+)/.exec(line) || /listening on (http:\/\/\S+|[\d.]+:\d+)/.exec(line)
      if (m) {
        clearTimeout(timer)
        resolve(m[1].startsWith('http') ? m[1] : `http://${m[1]}`)
      }
    }
    readline.createInterface({ input: child.stdout }).on('line', onLine)
    readline.createInterface({ input: child.stderr }).on('line', onLine)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${target} server exited (${code ?? signal}):\n${log.join('\n')}`))
    })
  })
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  return {
    url,
    log,
    child,
    exited,
    /** Stops the server: SIGTERM (graceful) by default, or 'SIGKILL'. */
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}

/**
 * Runs `chatseal-server <command> <args>` with the environment a server was
 * given (`env`, and `dataDir` as --data-dir), `input` on its standard
 * input; resolves to { code, stdout, stderr }.
 */
function cli(command, args, { env = {}, dataDir, input = '' } = {}) {
  const inherited = { ...process.env }
  for (const name of Object.keys(inherited)) {
    if (name.startsWith('CHATSEAL_') || name === 'DATABASE_URL') delete inherited[name]
  }
  const full = [command, ...args, ...(dataDir ? ['--data-dir', dataDir] : [])]
  return new Promise((resolve) => {
    const child = execFile(rustBin(), full, { env: { ...inherited, NO_COLOR: '1', RUST_LOG: 'warn', ...env } }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code ?? 1 : 0, stdout, stderr }),
    )
    child.stdin.end(input)
  })
}

/** `chatseal-server keys <args>` (see cli). */
const keys = (args, options) => cli('keys', args, options)
/** `chatseal-server users <args>` (see cli). */
const users = (args, options) => cli('users', args, options)

module.exports = { start, keys, users, serviceToken, publishToken, LIMITS, JWT_SECRET, ROOT }
