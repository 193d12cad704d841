'use strict'
// The package's install script. The addon is normally prebuilt: `polyroute.<platform>.node` next to index.js,
// or the matching `polyroute-<platform>` package (npm installs only the one whose os/cpu/libc match). When
// neither loads, build it from the Rust source (the repository around this directory, or `rust/` bundled in a
// packed tarball) if cargo is there, and otherwise stop with what is missing. Only Node built-ins are used.

const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const here = __dirname

function say(message) {
  // npm hides install-script output unless the script fails; progress goes to the terminal when there is one.
  const line = `polyroute: ${message}\n`
  process.stderr.write(line)
  if (!process.stderr.isTTY) {
    try {
      fs.appendFileSync('/dev/tty', line)
    } catch {
      // no terminal: the message is in npm's log
    }
  }
}

/** The napi-rs platform suffix of this process (`linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`, …). */
function platformSuffix() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const report = process.report && process.report.getReport ? process.report.getReport() : null
    const glibc = report && report.header && report.header.glibcVersionRuntime
    const abi = glibc ? 'gnu' : 'musl'
    return arch === 'arm' ? `linux-arm-${abi}eabihf` : `linux-${arch}-${abi}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function loads() {
  // A fresh process: a failed require is cached in this one.
  const r = spawnSync(process.execPath, ['-e', "require('./index.js')"], { cwd: here, encoding: 'utf8' })
  const lines = (r.stderr || '').trim().split('\n')
  const error = lines.find((l) => /^\s*(Error|\w+Error)\b/.test(l)) || lines[lines.length - 1] || ''
  return { ok: r.status === 0, error: error.trim() }
}

function findSource() {
  for (const root of [path.join(here, 'rust'), path.resolve(here, '..')]) {
    const manifest = path.join(root, 'bindings', 'node', 'Cargo.toml')
    if (fs.existsSync(manifest)) return { root, manifest }
  }
  return null
}

function have(cmd, args) {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function main() {
  // Developing polyroute itself (`npm install` inside node/): `npm run build` makes the addon.
  if (process.env.INIT_CWD && path.resolve(process.env.INIT_CWD) === here) return 0
  if (process.env.POLYROUTE_SKIP_BUILD) return 0

  const first = loads()
  if (first.ok) return 0

  const suffix = platformSuffix()
  const src = findSource()
  const missing = []
  const cargo = process.env.CARGO || 'cargo'
  if (!src) missing.push('the Rust source (install from a clone of the repository or from a packed tarball)')
  if (!have(cargo, ['--version'])) missing.push('Rust >= 1.88 with cargo (https://rustup.rs)')
  if (process.platform !== 'win32' && !have(process.env.CC || 'cc', ['--version'])) {
    missing.push('a C compiler (cc: gcc or clang)')
  }
  if (missing.length > 0) {
    say(
      `no prebuilt addon for ${suffix}, and building one from source needs: ${missing.join('; ')}.\n` +
        '  Install what is missing and run npm install again.' +
        (/Cannot find native binding/.test(first.error) ? '' : `\n  Loading the addon said: ${first.error}`),
    )
    return 1
  }

  const target = process.env.CARGO_TARGET_DIR || path.join(src.root, 'target')
  say(`no prebuilt addon for ${suffix}: building it from source (a release build; a few minutes)…`)
  const build = spawnSync(cargo, ['build', '--release', '--locked', '--lib', '--manifest-path', src.manifest], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, CARGO_TARGET_DIR: target },
  })
  if (build.status !== 0) {
    say(`cargo build failed (exit ${build.status}); see the output above`)
    return 1
  }
  const lib =
    process.platform === 'win32'
      ? 'polyroute_node.dll'
      : process.platform === 'darwin'
        ? 'libpolyroute_node.dylib'
        : 'libpolyroute_node.so'
  const built = path.join(target, 'release', lib)
  const dest = path.join(here, `polyroute.${suffix}.node`)
  fs.copyFileSync(built, dest)
  const again = loads()
  if (!again.ok) {
    say(`built ${dest} but it does not load:\n${again.error}`)
    return 1
  }
  say(`built ${path.basename(dest)}`)
  return 0
}

process.exitCode = main()
