'use strict'
// Helpers of the abuse suite: the conformance suite's server starter and
// client, raw HTTP/TCP from chosen loopback addresses (127.0.0.x: one
// machine, many "clients"), and the server's peak memory.
const fs = require('node:fs')
const http = require('node:http')
const net = require('node:net')
const { start, JWT_SECRET } = require('../conformance/lib/servers')
const client = require('../conformance/lib/client')

/** HTTP request from `from` (a loopback address); resolves { status, headers, body }. */
function request(url, method, path, { body, from = '127.0.0.1', headers = {}, timeout = 30000 } = {}) {
  const u = new URL(path, url)
  const data = body === undefined ? undefined : JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method,
        localAddress: from,
        agent: false,
        timeout,
        headers: { ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}), ...headers },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (c) => (text += c))
        res.on('end', () => {
          let parsed = text
          try {
            parsed = JSON.parse(text)
          } catch {}
          resolve({ status: res.statusCode, headers: res.headers, body: parsed, text })
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    if (data) req.write(data)
    req.end()
  })
}

/** A raw TCP connection from `from`; `gone` resolves when the server closes it. */
function rawConnect(url, from = '127.0.0.1') {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port), localAddress: from })
    sock.on('error', () => {})
    sock.gone = new Promise((r) => sock.on('close', r))
    sock.once('connect', () => resolve(sock))
    sock.once('error', reject)
  })
}

/** Peak resident memory of a process, in MiB (VmHWM). */
function peakRssMiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)[1]) / 1024
}

/** A counter's value from /metrics (0 if absent). */
async function metric(url, name) {
  const r = await request(url, 'GET', '/metrics')
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(r.text)
  return m ? Number(m[1]) : 0
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

module.exports = {
  start,
  JWT_SECRET,
  http: request,
  rawConnect,
  peakRssMiB,
  metric,
  sleep,
  connect: client.connect,
  ask: client.request,
  until: client.until,
  openMessage: client.openMessage,
}
