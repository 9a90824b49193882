'use strict'
// Builds the browser client into client/dist: app.js bundled by esbuild
// with the SDK (chatseal/client) and socket.io-client (from npm, never
// vendored), plus the static files; and the SDK alone as an ES module,
// dist/chatseal-client.js, for pages without a bundler. Run by
// `npm run build:client`; both servers serve client/dist at /.
const fs = require('node:fs')
const path = require('node:path')
const esbuild = require('esbuild')

const src = path.join(__dirname, 'src')
const dist = path.join(__dirname, 'dist')
fs.rmSync(dist, { recursive: true, force: true })
fs.mkdirSync(dist, { recursive: true })
const common = { bundle: true, format: 'esm', platform: 'browser', target: 'es2022', minify: true, sourcemap: true, logLevel: 'warning' }
esbuild.buildSync({ ...common, entryPoints: [path.join(src, 'app.js')], outfile: path.join(dist, 'app.js') })
esbuild.buildSync({ ...common, entryPoints: [path.join(__dirname, 'index.mjs')], outfile: path.join(dist, 'chatseal-client.js') })
for (const file of ['index.html', 'style.css']) fs.copyFileSync(path.join(src, file), path.join(dist, file))
console.log(`browser client built in ${path.relative(process.cwd(), dist) || dist}`)
