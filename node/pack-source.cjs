'use strict'
// `npm pack` / `npm publish` hooks (prepack, postpack): bundle the Rust source the addon is built from into
// rust/, so that installing the tarball on a platform without a prebuilt addon can build one (install.cjs).
// rust/ is a minimal Cargo workspace: the engine, its core, the Node binding and the loopback mock (a
// dev-dependency Cargo resolves), the lock trimmed to them; plus copies of the license files. `clean` removes both.

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const here = __dirname
const repo = path.resolve(here, '..')
const out = path.join(here, 'rust')
const crates = ['crates/polyroute-core', 'crates/polyroute', 'crates/polyroute-mock', 'bindings/node']
// Never shipped: tests, benchmarks' outputs, build output.
const skip = new Set(['tests', 'target', 'node_modules'])
const licenses = ['LICENSE-MIT', 'LICENSE-APACHE']

function copyDir(from, to) {
  fs.mkdirSync(to, { recursive: true })
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    if (skip.has(entry.name)) continue
    const a = path.join(from, entry.name)
    const b = path.join(to, entry.name)
    if (entry.isDirectory()) copyDir(a, b)
    else fs.copyFileSync(a, b)
  }
}

function bundle() {
  fs.rmSync(out, { recursive: true, force: true })
  for (const c of crates) copyDir(path.join(repo, c), path.join(out, c))
  for (const f of ['LICENSE-MIT', 'LICENSE-APACHE', 'Cargo.lock']) {
    fs.copyFileSync(path.join(repo, f), path.join(out, f))
  }
  // npm skips symlinks: the package's own license files are copies, made here and removed by `clean`.
  for (const f of licenses) fs.copyFileSync(path.join(repo, f), path.join(here, f))
  // The workspace manifest with only the bundled members; workspace.package and .dependencies stay as they are.
  const manifest = fs
    .readFileSync(path.join(repo, 'Cargo.toml'), 'utf8')
    .replace(/^members = \[.*\]$/m, `members = ${JSON.stringify(crates)}`)
    .replace(/^default-members = \[.*\]$/m, 'default-members = ["bindings/node"]')
  if (!manifest.includes(JSON.stringify(crates))) throw new Error('Cargo.toml: no members line to rewrite')
  fs.writeFileSync(path.join(out, 'Cargo.toml'), manifest)
  // Trim the lock to the bundled members without changing a version (offline: nothing is fetched).
  execFileSync('cargo', ['metadata', '--offline', '--format-version', '1', '--manifest-path', path.join(out, 'Cargo.toml')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  })
}

const cmd = process.argv[2]
if (cmd === 'bundle') bundle()
else if (cmd === 'clean') {
  fs.rmSync(out, { recursive: true, force: true })
  for (const f of licenses) fs.rmSync(path.join(here, f), { force: true })
}
else {
  console.error('usage: node pack-source.cjs bundle|clean')
  process.exitCode = 2
}
