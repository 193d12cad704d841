// Both module systems load the same package objects.
const { test } = require('node:test')
const assert = require('node:assert/strict')

test('require and import give the same Router', async () => {
  const cjs = require('polyroute')
  const esm = await import('polyroute')
  assert.equal(typeof cjs.Router, 'function')
  assert.equal(cjs.Router, esm.Router)
  assert.equal(esm.default.Router, cjs.Router)
  for (const name of ['ChatStream', 'ErrorCode', 'allCodes', 'validateRequest', 'isPolyrouteError']) {
    assert.equal(esm[name], cjs[name], name)
  }
})

test('router.fetch is bound and cached per router', async () => {
  const { Router } = require('polyroute')
  const r = new Router({ readEnv: false })
  const f = r.fetch
  assert.equal(f, r.fetch)
  const res = await f('http://polyroute.local/api/v1/models')
  assert.equal(res.status, 200)
  const body = await res.json()
  assert.equal(body.object, 'list')
  assert.ok(Array.isArray(body.data))
  const missing = await f('http://polyroute.local/api/v1/nothing')
  assert.equal(missing.status, 404)
})
