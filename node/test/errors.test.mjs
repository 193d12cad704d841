// Errors: the JavaScript vocabulary is complete against the core's codes, and thrown errors carry code, status,
// retryable, attempts and the OpenRouter envelope.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Router, ErrorCode, allCodes, validateRequest, isPolyrouteError } from 'polyroute'

const fixture = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'tests', 'fixtures', 'basic.json')
const router = new Router({ catalog: fixture, readEnv: false })
const hi = [{ role: 'user', content: 'hi' }]

function thrown(fn) {
  try {
    fn()
  } catch (e) {
    return e
  }
  assert.fail('expected a throw')
}

test('ErrorCode lists exactly the core codes', () => {
  assert.deepEqual([...Object.values(ErrorCode)].sort(), [...allCodes()].sort())
  assert.equal(new Set(allCodes()).size, allCodes().length)
})

test('a thrown error carries code, status, retryable, attempts and body', () => {
  const e = thrown(() => router.plan({ model: 'nope/missing', messages: hi }, {}))
  assert.ok(e instanceof Error)
  assert.ok(isPolyrouteError(e))
  assert.equal(e.name, 'PolyrouteError')
  assert.equal(e.code, ErrorCode.ModelNotFound)
  assert.equal(e.status, 400)
  assert.equal(e.retryable, false)
  assert.deepEqual(e.attempts, [])
  assert.equal(e.body.error.code, 400)
  assert.equal(e.body.error.message, e.message)
  assert.equal(e.body.error.metadata.polyroute_code, 'model_not_found')
  assert.ok(typeof e.stack === 'string')
})

test('invalid_request names the field', () => {
  const e = thrown(() => validateRequest({ model: 'test/small', messages: hi, provider: { sort: 'cheapest' } }))
  assert.equal(e.code, 'invalid_request')
  assert.equal(e.body.error.metadata.field, 'provider.sort')
  assert.equal(e.status, 400)
})

test('availability errors list exclusions', () => {
  const e = thrown(() => router.plan({ model: 'test/open-70b', messages: hi, provider: { only: ['nobody'] } }, {}))
  assert.equal(e.code, 'constraint_filtered')
  assert.equal(e.status, 404)
  assert.ok(e.body.error.availability.excluded_by.includes('allowed_providers'))
})

test('invalid catalogs are rejected with every issue', () => {
  const e = thrown(() => new Router({ catalog: { providers: [], models: [{ id: 'no-slash', pricing: { prompt: '-1', completion: '0' } }] } }))
  assert.equal(e.code, 'invalid_catalog')
  assert.ok(e.body.error.metadata.issues.length >= 2)
  const bad = thrown(() => new Router({ catalog: 42 }))
  assert.equal(bad.code, 'invalid_request')
})

test('cost errors: unknown provider and malformed usage', () => {
  assert.equal(thrown(() => router.cost('test/open-70b', { prompt_tokens: 1 }, 'nobody')).code, 'invalid_request')
  assert.equal(thrown(() => router.cost('test/open-70b', { prompt_tokens: 'many' })).code, 'invalid_request')
  assert.equal(thrown(() => router.cost('nope/missing', { prompt_tokens: 1 })).code, 'model_not_found')
})

test('models filters', () => {
  const all = router.models()
  assert.ok(all.length > 0)
  assert.ok(router.models({ search: 'gpt' }).every((m) => m.id.includes('gpt')))
  assert.deepEqual(router.models({ search: 'definitely-not-a-model' }), [])
  const cheap = router.models({ maxPromptPrice: 0.5 })
  assert.ok(cheap.length < all.length)
  assert.equal(thrown(() => router.models({ maxPromptPrice: 'lots' })).code, 'invalid_request')
})

test('without a context, plan uses the router credentials', () => {
  const e = thrown(() => router.plan({ model: 'test/open-70b', messages: hi }))
  assert.ok(e.body.error.availability.excluded_by.includes('no_credentials'))
})
