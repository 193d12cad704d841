// The parity table (tests/parity/plan_cost.json): Node's plan and cost give the engine's answers
// (plan_cost.expected.json, which the Rust and Python suites compare with too), and `new Router({...})` is the
// engine's RouterConfig in camelCase.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Router } from 'polyroute'

const tests = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'tests')
const table = JSON.parse(readFileSync(join(tests, 'parity', 'plan_cost.json'), 'utf8'))
const expected = JSON.parse(readFileSync(join(tests, 'parity', 'plan_cost.expected.json'), 'utf8'))

function thrown(fn) {
  try {
    fn()
  } catch (e) {
    return e
  }
  assert.fail('expected a throw')
}

test('plan and cost answer the parity table', () => {
  const router = new Router({ ...table.router, catalog: join(tests, 'fixtures', 'basic.json') })
  const plans = table.plan.map((c) => router.plan(c.request, c.inputs))
  const costs = table.cost.map((c) => router.cost(c.model, c.usage, c.provider ?? null, c.inputs))
  assert.deepEqual(plans, expected.plan)
  assert.deepEqual(costs, expected.cost)
})

test('router options are the engine configuration: every option, unknown keys refused', () => {
  const r = new Router({
    readEnv: false,
    providers: { openai: { apiKey: 'sk-test-fake', timeouts: { firstTokenMs: 100 } } },
    sameEndpointRetries: 1,
    retryBackoffMs: 5,
    stickyTtlMs: 1000,
    limits: { routerUsd: '0.5', userUsd: { alice: 1 }, defaultUserUsd: 2, freePerMinute: 3 },
  })
  assert.ok(r)
  assert.match(thrown(() => new Router({ readEnv: false, retryBackof: 1 })).message, /retryBackof/)
  assert.match(thrown(() => new Router({ readEnv: false, limits: { routerUsd: 'ten' } })).message, /USD/)
  const e = thrown(() => new Router({ readEnv: false, providers: { opneai: { apiKey: 'sk-test-fake' } } }))
  assert.match(e.message, /did you mean "openai"/)
  // a negative seed is refused rather than folded onto its absolute value
  const basic = new Router({ readEnv: false, catalog: join(tests, 'fixtures', 'basic.json') })
  const hi = { model: 'test/worked', messages: [{ role: 'user', content: 'hi' }] }
  thrown(() => basic.plan(hi, { seed: -5 }))
})
