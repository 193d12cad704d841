// Azure and credential pools through `new Router({providers: ...})` in camelCase: the keys of the one
// configuration type reach the engine. A mock of its own, so the requests it reports are only this file's.
import { test, before, after, beforeEach } from 'node:test'
import assert from 'node:assert/strict'
import { Router } from 'polyroute'
import { startMock, fixture } from '../support/mock.mjs'

let mock
const AZ_KEY = 'azure-test-fake-key-node'
const hi = (model) => ({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 10 })

before(async () => {
  mock = await startMock()
})
after(() => mock?.stop())
beforeEach(async () => {
  await mock.reset()
})

/** The fixture catalog plus an Azure provider (the catalog's placeholder URL) serving `test/az`. */
function withAzure(options) {
  const base = fixture(mock.url)
  const chat = base.catalog.models.find((m) => m.id === 'test/chat')
  const az = { ...structuredClone(chat), id: 'test/az', name: 'test/az' }
  az.endpoints = [{ ...az.endpoints[0], provider: 'azure', provider_name: 'Azure', tag: 'azure', provider_model_id: 'az-model' }]
  base.catalog.providers.push({ slug: 'azure', name: 'Azure', dialect: 'azure-openai', base_url: 'https://YOUR-RESOURCE.openai.azure.com/openai/v1' })
  base.catalog.models.push(az)
  return new Router({ ...base, providers: { azure: options } })
}

test('azure: no resource is settings_missing; apiVersion selects the dated API', async () => {
  await assert.rejects(withAzure({ apiKey: AZ_KEY }).chat(hi('test/az')), (e) => {
    assert.ok(e.body.error.availability.excluded_by.includes('settings_missing'), JSON.stringify(e.body))
    return true
  })
  assert.equal((await mock.calls()).requests.length, 0)

  const r = withAzure({ apiKey: AZ_KEY, baseUrl: `${mock.url}/openai`, deployment: 'node-dep', apiVersion: '2024-10-21' })
  const c = await r.chat(hi('test/az'))
  assert.equal(c.choices[0].message.content, 'mock: hi')
  const [got] = (await mock.calls()).requests
  assert.equal(got.path, '/openai/deployments/node-dep/chat/completions')
  assert.equal(got.query, 'api-version=2024-10-21')
  assert.equal(got.headers['api-key'], AZ_KEY)
  assert.equal(got.headers.authorization, undefined)
  assert.equal(got.body.model, 'node-dep')
})

test('pool: a revoked key is followed by the next key of the same endpoint', async () => {
  const revoked = 'sk-test-node-revoked-fake'
  const good = 'sk-test-node-good-fake'
  await fetch(`${mock.url}/__mock/key-fault`, { method: 'POST', body: JSON.stringify({ key: revoked, fault: '401' }) })
  const base = fixture(mock.url)
  const r = new Router({ ...base, providers: { alpha: { apiKeys: [revoked, good] } } })
  const c = await r.chat({ ...hi('test/chat'), provider: { only: ['alpha'] } })
  assert.equal(c.provider, 'Alpha Cloud')
  const auths = (await mock.calls()).requests.map((q) => q.headers.authorization)
  assert.deepEqual(auths, [`Bearer ${revoked}`, `Bearer ${good}`])
  assert.ok(!JSON.stringify(c).includes(good))
})
