'use strict'
// Builds the browser client into client/dist: app.js bundled with
// socket.io-client (from npm, never vendored) by esbuild, plus the static
// files. Run by `npm run build:client`; both servers serve client/dist at /.
const fs = require('node:fs')
const path = require('node:path')
const esbuild = require('esbuild')

const src = path.join(__dirname, 'src')
const dist = path.join(__dirname, 'dist')
fs.rmSync(dist, { recursive: true, force: true })
fs.mkdirSync(dist, { recursive: true })
esbuild.buildSync({
  entryPoints: [path.join(src, 'app.js')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  outfile: path.join(dist, 'app.js'),
  logLevel: 'warning',
})
for (const file of ['index.html', 'style.css']) fs.copyFileSync(path.join(src, file), path.join(dist, file))
console.log(`browser client built in ${path.relative(process.cwd(), dist) || dist}`)
