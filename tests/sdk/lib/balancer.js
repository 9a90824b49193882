'use strict'
// A TCP load balancer the test steers: it forwards to one backend, can be
// pointed at another (a switch to another server of a cluster), can cut
// every connection (an outage seen from the client), and can mute the
// server→client direction (the request arrives, the ack never does).
const net = require('node:net')

async function balancer(backendUrl) {
  let target = new URL(backendUrl)
  let cut = false
  let muted = false
  const open = new Set()
  const server = net.createServer((client) => {
    if (cut) return client.destroy()
    const upstream = net.connect(Number(target.port), target.hostname)
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
    upstream.on('data', (chunk) => {
      if (!muted) client.write(chunk)
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Sends new connections to another backend (open ones are cut). */
    point(url) {
      target = new URL(url)
      this.drop()
    },
    /** Drops every open connection; new ones are refused until restore(). */
    cut() {
      cut = true
      this.drop()
    },
    restore() {
      cut = false
      muted = false
    },
    /** Server→client bytes are swallowed from now on. */
    mute() {
      muted = true
    },
    drop() {
      for (const s of open) s.destroy()
      open.clear()
    },
    close() {
      this.cut()
      return new Promise((resolve) => server.close(resolve))
    },
  }
}

module.exports = { balancer }
