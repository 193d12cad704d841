// router.embeddings against the loopback mock: vectors, dimensions, base64, model fallback, cost, errors.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import { Router } from 'polyroute'
import { startMock, fixture } from '../support/mock.mjs'

let mock
let router

const embedModel = (id, providers, price) => ({
  id, name: id, created: 1, context_length: 8192,
  architecture: { input_modalities: ['text'], output_modalities: ['embeddings'] },
  pricing: { prompt: price, completion: '0' }, top_provider: { context_length: 8192 },
  endpoints: providers.map((p) => ({ provider: p, provider_name: p, tag: p, provider_model_id: `${p}-embed`,
    context_length: 8192, pricing: { prompt: price, completion: '0' } })),
})

before(async () => {
  mock = await startMock()
  const f = fixture(mock.url)
  f.catalog.models.push(embedModel('test/embed', ['alpha'], '0.0000001'), embedModel('test/embed-broken', ['broken'], '0.0000001'))
  router = new Router(f)
})

after(() => mock?.stop())

test('embeddings: vectors, usage, cost and the ledger', async () => {
  const e = await router.embeddings({ model: 'test/embed', input: ['one two', 'three'], dimensions: 6 })
  assert.equal(e.object, 'list')
  assert.deepEqual(e.data.map((d) => d.embedding.length), [6, 6])
  assert.equal(e.usage.prompt_tokens, 3)
  assert.ok(Math.abs(e.usage.cost - 3e-7) < 1e-15, String(e.usage.cost))
  const rec = await router.generation(e.id)
  assert.equal(rec.model, 'test/embed')
  const b = await router.embeddings({ model: 'test/embed', input: 'one two', dimensions: 6, encoding_format: 'base64' })
  const buf = Buffer.from(b.data[0].embedding, 'base64')
  const floats = Array.from({ length: 6 }, (_, i) => buf.readFloatLE(i * 4))
  assert.deepEqual(floats, e.data[0].embedding.map((x) => Math.fround(x)))
})

test('embeddings: model fallback and errors', async () => {
  const e = await router.embeddings({ model: 'test/embed-broken', models: ['test/embed'], input: 'x' })
  assert.equal(e.model, 'test/embed')
  await assert.rejects(router.embeddings({ model: 'test/chat', input: 'x' }),
    (err) => err.code === 'invalid_request' && /not an embedding model/.test(err.message))
  await assert.rejects(router.embeddings({ model: 'test/embed', input: [] }),
    (err) => err.code === 'invalid_request' && /input/.test(err.message))
})

test('embeddings: the openai SDK through router.fetch', async () => {
  const client = new OpenAI({ apiKey: 'unused', baseURL: 'http://polyroute.local/api/v1', fetch: router.fetch, maxRetries: 0 })
  // The SDK asks for base64 by default and decodes it.
  const e = await client.embeddings.create({ model: 'test/embed', input: ['a b', 'c'], dimensions: 4 })
  assert.deepEqual(e.data.map((d) => d.embedding.length), [4, 4])
  assert.equal(e.usage.prompt_tokens, 3)
})
