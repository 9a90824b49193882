#!/usr/bin/env node
'use strict'
// The documented Node.js chat server: the tutorial's socket.io + express
// server, made right. Messages are sealed in-process by the chatseal addon
// (or, with CHATSEAL_ENCRYPTION_URL, by a remote /encrypt service: the
// tutorial's architecture, kept for comparison) and spoken with the
// protocol of DESIGN §3, so clients cannot tell it from the Rust server.
//
// Configuration: the environment variables of `chatseal-server --help`
// (CHATSEAL_LISTEN, CHATSEAL_DATA_DIR, CHATSEAL_KEYRING_FILE, …).
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const express = require('express')
const { Server } = require('socket.io')
const { Sealer } = require('.')
const { load } = require('./lib/config')
const keyrings = require('./lib/keyring')
const chat = require('./lib/chat')
const presence = require('./lib/presence')
const service = require('./lib/service')
const directory = require('./lib/directory')
const sealing = require('./lib/sealing')
const { History } = require('./lib/history')
const { ProtocolError } = require('./lib/errors')
const parser = require('./lib/parser')

const log = (...args) => console.error(new Date().toISOString(), ...args)

function loadKeyring(config) {
  const loaded = keyrings.loadKeyring(config)
  if (loaded.warning) log(`warning: ${loaded.warning}`)
  if (loaded.created) log(loaded.created)
  return loaded
}

/** Builds the server; `listen()` starts it. */
function createServer(config = load()) {
  const { keyring, source } = loadKeyring(config)
  const sealer = new Sealer(keyring)
  log(`keyring loaded from ${source} (primary key ${keyring.primary})`)
  const seal = config.encryptionUrl ? sealing.remote(config.encryptionUrl, config.encryptionToken) : sealing.inProcess(sealer)
  if (config.plain) log('CHATSEAL_PLAIN: messages are relayed as plaintext and not kept (benchmark upper bound only)')
  const history = new History({
    perRoom: config.historyPerRoom,
    maxRooms: config.maxRooms,
    roomBytes: config.historyRoomBytes,
    totalBytes: config.historyBytes,
  })

  const app = express()
  app.disable('x-powered-by')
  app.use(express.json({ limit: config.maxPayloadBytes }))
  app.get('/healthz', (_req, res) => res.json({ status: 'ok' }))
  const serviceRule = service.routes(app, { config, sealer, log })
  directory.routes(app, { history, log })
  if (fs.existsSync(path.join(config.clientDir, 'index.html'))) app.use(express.static(config.clientDir))
  app.use((_req, res) => {
    const { status, body } = new ProtocolError('NOT_FOUND', 'no such route').toHttp()
    res.status(status).json(body)
  })
  // Body-parser failures (bad JSON, too large) become protocol errors.
  app.use((err, _req, res, _next) => {
    const code = err.type === 'entity.too.large' ? 'TOO_LARGE' : 'BAD_REQUEST'
    const { status, body } = new ProtocolError(code, err.message).toHttp()
    res.status(status).json(body)
  })

  const httpServer = http.createServer(app)
  // Every TCP connection, WebSockets included (closeAllConnections() only
  // knows plain HTTP ones): at shutdown a peer that never answers the
  // WebSocket close handshake would otherwise hold the process for ws's
  // 30 s close timeout.
  const connections = new Set()
  httpServer.on('connection', (conn) => {
    connections.add(conn)
    conn.once('close', () => connections.delete(conn))
  })
  // Limits set explicitly (DESIGN §3): socket.io's default payload limit is
  // 1 MB, socketioxide's 100 kB; both servers use CHATSEAL_MAX_PAYLOAD_BYTES.
  // The parser answers a non-object `auth` with connect_error (lib/parser.js).
  const io = new Server(httpServer, { maxHttpBufferSize: config.maxPayloadBytes, serveClient: false, parser })
  const drain = chat.attach(io, { config, sealer, sealing: seal, history, log })
  chat.watchSlowReaders(io, config.socketBuffer, log)
  presence.watch(io)

  // SIGHUP (see below): read the keyring again and announce the new primary.
  function reloadKeyring() {
    const before = sealer.primaryKeyId
    const { keyring } = loadKeyring(config)
    sealer.replaceKeyring(keyring)
    log(`keyring reloaded: primary ${keyring.primary} (was ${before})`)
    if (keyring.primary === before || config.plain) return
    const nsp = io.of('/')
    for (const room of nsp.adapter.rooms.keys()) {
      if (nsp.sockets.has(room)) continue // each socket's own room
      const key = chat.epochKey(sealer.roomKey(room, keyring.primary))
      nsp.to(room).emit('room key', { room, key })
    }
  }

  return {
    app,
    io,
    httpServer,
    sealer,
    reloadKeyring,
    listen() {
      return new Promise((resolve, reject) => {
        httpServer.once('error', reject)
        httpServer.listen(config.listen.port, config.listen.host, () => {
          const { address, port } = httpServer.address()
          const host = address.includes(':') ? `[${address}]` : address
          log(serviceRule)
          log(`sealing: ${config.plain ? 'none (plain relay)' : seal.describe}`)
          console.log(`listening on http://${host}:${port}`)
          resolve(port)
        })
      })
    },
    /**
     * Stops: no new connections; events already received are handled and
     * acknowledged (for up to `graceMs`); then every socket is closed.
     * Open sockets no longer hold the process for the HTTP server's
     * timeouts (30 s): the Rust server stops the same way in well under
     * a second.
     */
    async close(graceMs = 5000) {
      const closed = new Promise((resolve) => httpServer.close(() => resolve()))
      const deadline = Date.now() + graceMs
      let timer
      await Promise.race([drain(), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))])
      clearTimeout(timer)
      // The last acks may still sit in a socket's write buffer.
      const sockets = () => io.of('/').sockets.values()
      while ([...sockets()].some((socket) => socket.conn.writeBuffer.length > 0) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
      // Disconnects every socket (they are told why) and closes the engine.
      for (const socket of sockets()) socket.disconnect(true)
      io.engine.close()
      httpServer.closeAllConnections()
      // Closing politely gets a moment; then whatever is left is cut.
      const polite = await Promise.race([closed.then(() => true), new Promise((resolve) => setTimeout(resolve, 500, false))])
      if (!polite) for (const conn of connections) conn.destroy()
      await closed
    },
  }
}

if (require.main === module) {
  let server
  try {
    server = createServer()
  } catch (err) {
    log(`error: ${err.message}`)
    process.exit(1)
  }
  server.listen().catch((err) => {
    log(`error: ${err.message}`)
    process.exit(1)
  })
  const stop = () => {
    log('shutting down')
    server.close().then(() => process.exit(0))
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
  process.on('SIGHUP', () => {
    try {
      server.reloadKeyring()
    } catch (err) {
      log(`keyring reload failed; keeping the current one: ${err.message}`)
    }
  })
}

module.exports = { createServer }
