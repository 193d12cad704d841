// The package as npm sees it: the napi-rs per-platform layout, what `npm pack` ships, the install script.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const root = path.resolve(__dirname, '..')
const pkg = require('../package.json')

test('every platform package is listed, and matches its suffix', () => {
  const dirs = fs.readdirSync(path.join(root, 'npm')).sort()
  assert.ok(dirs.length > 0)
  assert.deepEqual(Object.keys(pkg.optionalDependencies).sort(), dirs.map((d) => `polyroute-${d}`))
  for (const d of dirs) {
    const p = require(path.join(root, 'npm', d, 'package.json'))
    assert.equal(p.name, `polyroute-${d}`)
    assert.equal(p.version, pkg.version, `${d}: one version for all packages`)
    assert.equal(pkg.optionalDependencies[p.name], pkg.version)
    assert.equal(p.main, `polyroute.${d}.node`)
    assert.deepEqual(p.files, [p.main])
    const [os, cpu, abi] = d.split('-')
    assert.deepEqual(p.os, [os])
    assert.deepEqual(p.cpu, [cpu])
    if (abi === 'gnu') assert.deepEqual(p.libc, ['glibc'])
    if (abi === 'musl') assert.deepEqual(p.libc, ['musl'])
  }
})

test('npm pack ships no addon and no debug build; ESM and CommonJS entries', () => {
  assert.ok(!pkg.files.some((f) => f.includes('.node')), 'addons come from the platform packages only')
  for (const f of pkg.files.filter((f) => !f.endsWith('/') && !f.startsWith('LICENSE'))) {
    assert.ok(fs.existsSync(path.join(root, f)), `${f} is listed but missing`)
  }
  assert.equal(pkg.exports['.'].import, './polyroute.mjs')
  assert.equal(pkg.exports['.'].require, './polyroute.cjs')
  assert.equal(pkg.scripts.install, 'node install.cjs')
  assert.equal(pkg.scripts.prepack, 'node pack-source.cjs bundle')
})

test('the install script is a no-op when the addon loads', () => {
  const r = spawnSync(process.execPath, [path.join(root, 'install.cjs')], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, INIT_CWD: '/', CARGO: '/nonexistent/cargo' },
  })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stderr, '')
})
