'use strict'
// Turns target/bench/results.jsonl (scripts/bench.sh) into the Markdown
// tables of docs/benchmarks.md, with the goals of issue 7 as ratios.
const fs = require('node:fs')
const os = require('node:os')

const rows = fs.readFileSync(process.argv[2], 'utf8').trim().split('\n').map((l) => JSON.parse(l))
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
// One row per (server, clients): the median of every number over the
// rounds, and the range of deliveries/s.
const groups = new Map()
const scenarioOf = (r) => r.scenario ?? 'chat'
for (const r of rows.filter((r) => r.clients !== undefined && r.accepted !== undefined && scenarioOf(r) === 'chat')) {
  const key = `${r.label}\0${r.clients}`
  if (!groups.has(key)) groups.set(key, [])
  groups.get(key).push(r)
}
const chat = [...groups.values()].map((runs) => {
  const out = { ...runs[0], rounds: runs.length }
  for (const [k, v] of Object.entries(runs[0])) {
    if (typeof v === 'number') out[k] = median(runs.map((r) => r[k]))
  }
  out.errors = runs.reduce((n, r) => n + r.errors, 0)
  out.never_delivered = runs.reduce((n, r) => n + r.never_delivered, 0)
  out.deliveries_min = Math.min(...runs.map((r) => r.deliveries_per_sec))
  out.deliveries_max = Math.max(...runs.map((r) => r.deliveries_per_sec))
  return out
})
const idle = rows.filter((r) => r.kib_per_connection !== undefined)
const hasChat = [...groups.keys()].length > 0
const k = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0))

console.log(`Machine: ${os.cpus().length} × ${os.cpus()[0].model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}\n`)
if (hasChat) {
  console.log(`Median of ${chat[0]?.rounds ?? 0} rounds; errors and never-delivered are totals over all rounds.\n`)
  console.log('| server | clients | accepted/s | deliveries/s (range) | p50 ms | p99 ms | p99.9 ms | errors | never delivered | server CPU | CPU per delivery | peak RSS |')
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|')
}
for (const r of chat) {
  console.log(
    `| ${r.label} | ${r.clients} | ${k(r.accepted_per_sec)} | ${k(r.deliveries_per_sec)} (${k(r.deliveries_min)}–${k(r.deliveries_max)}) | ${r.latency_ms_p50.toFixed(1)} | ${r.latency_ms_p99.toFixed(1)} | ${r.latency_ms_p999.toFixed(1)} | ${r.errors} | ${r.never_delivered} | ${r.server_cpu_percent.toFixed(0)} % | ${((r.server_cpu_percent * 1e4) / r.deliveries_per_sec).toFixed(2)} µs | ${r.server_peak_rss_mib.toFixed(0)} MiB |`,
  )
}
if (idle.length) {
  console.log('\n| server | idle connections | load processes | RSS before | RSS after | per connection |')
  console.log('|---|---|---|---|---|---|')
  for (const r of idle) {
    console.log(`| ${r.label} | ${r.connections} | ${r.processes ?? 1} | ${r.rss_before_mib.toFixed(1)} MiB | ${r.rss_after_mib.toFixed(1)} MiB | ${r.kib_per_connection.toFixed(1)} KiB |`)
  }
}

// The scenarios at scale (one run each).
const ms = (v) => (v === null || v === undefined ? 'n/a' : v.toFixed(1))
const large = rows.filter((r) => scenarioOf(r) === 'large-room')
if (large.length) {
  console.log('\nLarge room: every message timed to its LAST member (messages that reached every member).\n')
  console.log('| server | members | senders × msg/s | messages (reached all) | deliveries/s | send→receipt p50 / p99 ms | send→last member p50 / p99 / max ms | never delivered | server CPU | peak RSS |')
  console.log('|---|---|---|---|---|---|---|---|---|---|')
  for (const r of large) {
    console.log(
      `| ${r.label} | ${r.clients} | ${r.senders} × ${r.rate} | ${r.accepted} (${r.messages_complete ?? 'n/a'}) | ${k(r.deliveries_per_sec)} | ${ms(r.latency_ms_p50)} / ${ms(r.latency_ms_p99)} | ${ms(r.last_delivery_ms_p50)} / ${ms(r.last_delivery_ms_p99)} / ${ms(r.last_delivery_ms_max)} | ${r.never_delivered} | ${r.server_cpu_percent.toFixed(0)} % | ${r.server_peak_rss_mib.toFixed(0)} MiB |`,
    )
  }
}
const many = rows.filter((r) => scenarioOf(r) === 'many-rooms')
if (many.length) {
  console.log('\nMany rooms: every member sends at a bounded rate.\n')
  console.log('| server | rooms × members | msg/s per member | accepted/s | deliveries/s | p50 ms | p99 ms | p99.9 ms | errors | never delivered | server CPU | peak RSS |')
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|')
  for (const r of many) {
    console.log(
      `| ${r.label} | ${r.rooms} × ${Math.round(r.clients / r.rooms)} | ${r.rate} | ${k(r.accepted_per_sec)} | ${k(r.deliveries_per_sec)} | ${ms(r.latency_ms_p50)} | ${ms(r.latency_ms_p99)} | ${ms(r.latency_ms_p999)} | ${r.errors} | ${r.never_delivered} | ${r.server_cpu_percent.toFixed(0)} % | ${r.server_peak_rss_mib.toFixed(0)} MiB |`,
    )
  }
}
const since = rows.filter((r) => scenarioOf(r) === 'since')
if (since.length) {
  console.log('\n`join { since }` (the last 50 messages of a room) as the store grows: it should stay flat.\n')
  console.log('| server | messages stored | room latestSeq | joins | p50 ms | p99 ms | max ms | errors |')
  console.log('|---|---|---|---|---|---|---|---|')
  for (const r of since) {
    console.log(`| ${r.label} | ${k(r.stored)} | ${r.latest_seq} | ${r.joins} | ${ms(r.latency_ms_p50)} | ${ms(r.latency_ms_p99)} | ${ms(r.latency_ms_max)} | ${r.errors} |`)
  }
}

const find = (label, clients) => chat.find((r) => r.label === label && r.clients === clients)
const ratio = (a, b) => (a && b ? a.deliveries_per_sec / b.deliveries_per_sec : NaN)
console.log('\n| goal | 10 clients | 100 clients |')
console.log('|---|---|---|')
const goal = (text, a, b, min) => {
  const cells = [10, 100].map((n, i) => {
    const least = Array.isArray(min) ? min[i] : min
    const x = ratio(find(a, n), find(b, n))
    return Number.isNaN(x) ? 'n/a' : `${x.toFixed(2)}× ${x >= least ? '(met)' : '(not met)'}`
  })
  console.log(`| ${text} | ${cells.join(' | ')} |`)
}
goal('Rust (SQLite) ≥ 0.6× (10) / 0.8× (100) the plain socketioxide relay', 'rust (SQLite)', 'plain relay', [0.6, 0.8])
goal('Rust (SQLite) ≥ 3× plain Node deliveries/s', 'rust (SQLite)', 'node, plain', 3)
goal('Node + addon ≥ 90 % of plain Node', 'node + addon', 'node, plain', 0.9)
goal('Rust (SQLite) ≥ 10× the tutorial architecture', 'rust (SQLite)', 'node + remote /encrypt', 10)
goal('Node + addon ≥ 10× the tutorial architecture', 'node + addon', 'node + remote /encrypt', 10)
const [ri, ni] = ['rust', 'node'].map((l) => idle.find((r) => r.label === l))
if (ri && ni) {
  const met = ri.kib_per_connection <= ni.kib_per_connection
  console.log(`| Rust memory per idle connection ≤ Node's | ${ri.kib_per_connection.toFixed(1)} vs ${ni.kib_per_connection.toFixed(1)} KiB ${met ? '(met)' : '(not met)'} | |`)
}

// With a second argument: the deliveries/s of every server as an SVG bar
// chart (median bar, range whisker, p50/p99 latency beside it).
if (process.argv[3]) fs.writeFileSync(process.argv[3], svg(chat))

function svg(rows) {
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;')
  const panels = [10, 100].map((n) => rows.filter((r) => r.clients === n)).filter((p) => p.length)
  const top = Math.max(...rows.map((r) => r.deliveries_max))
  const [W, label, bar, gap] = [820, 190, 20, 8]
  const scale = (v) => (v / top) * (W - label - 240)
  let y = 30
  const parts = []
  for (const panel of panels) {
    parts.push(`<text x="10" y="${y}" font-weight="bold">${panel[0].clients} clients — deliveries/s (median of ${panel[0].rounds}, range as a whisker)</text>`)
    y += 14
    for (const r of panel) {
      const w = scale(r.deliveries_per_sec)
      const [lo, hi] = [scale(r.deliveries_min), scale(r.deliveries_max)]
      const fill = r.label.startsWith('rust') ? '#b7410e' : r.label.includes('remote') ? '#888' : '#3c873a'
      parts.push(
        `<text x="${label - 6}" y="${y + 15}" text-anchor="end">${esc(r.label)}</text>`,
        `<rect x="${label}" y="${y}" width="${w.toFixed(1)}" height="${bar}" fill="${fill}"/>`,
        `<line x1="${(label + lo).toFixed(1)}" x2="${(label + hi).toFixed(1)}" y1="${y + bar / 2}" y2="${y + bar / 2}" stroke="#000"/>`,
        `<text x="${(label + Math.max(w, hi) + 6).toFixed(1)}" y="${y + 15}">${k(r.deliveries_per_sec)}/s · p50 ${r.latency_ms_p50.toFixed(1)} ms · p99 ${r.latency_ms_p99.toFixed(1)} ms</text>`,
      )
      y += bar + gap
    }
    y += 24
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
${parts.join('\n')}
</svg>
`
}
