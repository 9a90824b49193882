'use strict'
// A TCP proxy a test can cut: every open connection is dropped and new ones
// are refused until it is restored. It stands between a server and
// PostgreSQL or Redis to make "unreachable" without stopping the real one.
const net = require('node:net')

async function proxy(targetPort, targetHost = '127.0.0.1') {
  const open = new Set()
  let cut = false
  const server = net.createServer((client) => {
    if (cut) return client.destroy()
    const upstream = net.connect(targetPort, targetHost)
    open.add(client)
    open.add(upstream)
    const close = () => {
      client.destroy()
      upstream.destroy()
      open.delete(client)
      open.delete(upstream)
    }
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
    client.pipe(upstream)
    upstream.pipe(client)
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
    close() {
      this.cut()
      return new Promise((resolve) => server.close(resolve))
    },
  }
}

module.exports = { proxy }
