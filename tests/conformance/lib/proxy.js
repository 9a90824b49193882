'use strict'
// A TCP proxy a test can cut: every open connection is dropped and new ones
// are refused until it is restored. It stands between a server and
// PostgreSQL or Redis to make "unreachable" without stopping the real one.
// It can also freeze: connections stay open (and new ones are accepted)
// but nothing is forwarded until it thaws, a database that hangs.
const net = require('node:net')

async function proxy(targetPort, targetHost = '127.0.0.1') {
  const open = new Set()
  const pairs = new Set()
  let cut = false
  let frozen = false
  const flow = ([client, upstream]) => {
    client.pipe(upstream)
    upstream.pipe(client)
  }
  const stall = ([client, upstream]) => {
    client.unpipe(upstream)
    upstream.unpipe(client)
    client.pause()
    upstream.pause()
  }
  const server = net.createServer((client) => {
    if (cut) return client.destroy()
    const upstream = net.connect(targetPort, targetHost)
    const pair = [client, upstream]
    open.add(client)
    open.add(upstream)
    pairs.add(pair)
    const close = () => {
      client.destroy()
      upstream.destroy()
      open.delete(client)
      open.delete(upstream)
      pairs.delete(pair)
    }
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
    if (frozen) stall(pair)
    else flow(pair)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: server.address().port,
    cut() {
      cut = true
      for (const s of open) s.destroy()
      open.clear()
    },
    restore() {
      cut = false
    },
    /** Stops forwarding, keeping every connection open. */
    freeze() {
      frozen = true
      for (const pair of pairs) stall(pair)
    },
    /** Forwards again, what was held first. */
    thaw() {
      frozen = false
      for (const pair of pairs) flow(pair)
    },
    close() {
      this.cut()
      return new Promise((resolve) => server.close(resolve))
    },
  }
}

module.exports = { proxy }
