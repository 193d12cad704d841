// router.metrics(), router.metricsText() and hooks ({ onAttempt, onGeneration }) against the loopback mock.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Router } from 'polyroute'
import { startMock, fixture } from '../support/mock.mjs'

let mock
const hi = (text = 'hello') => [{ role: 'user', content: text }]
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

before(async () => {
  mock = await startMock()
})

after(() => mock?.stop())

function value(snap, name, want = {}) {
  return snap[name].samples
    .filter((s) => Object.entries(want).every(([k, v]) => s.labels[k] === v))
    .reduce((n, s) => n + (s.value ?? s.count), 0)
}

async function waitFor(cond) {
  for (let i = 0; i < 300; i++) {
    if (cond()) return
    await sleep(10)
  }
  assert.fail('condition not met within 3 s')
}

test('metrics count a known sequence and hooks see every attempt and generation', async () => {
  const attempts = []
  const generations = []
  const router = new Router({
    ...fixture(mock.url),
    hooks: { onAttempt: (e) => attempts.push(e), onGeneration: (g) => generations.push(g) },
  })
  const ok = await router.chat({ model: 'test/chat', messages: hi(), provider: { order: ['alpha'] } }, { user: 'team-a' })
  const fb = await router.chat({ model: 'test/broken', models: ['test/broken', 'test/chat'], messages: hi() }, { user: 'team-a' })
  await assert.rejects(router.chat({ model: 'test/broken', messages: hi() }), (e) => e.code === 'temporarily_unavailable')
  for await (const c of router.stream({ model: 'test/chat', messages: hi(), provider: { order: ['beta'] } }, { user: 'team-a' })) assert.ok(c)

  const snap = router.metrics()
  assert.equal(value(snap, 'polyroute_requests_total', { status: 'ok' }), 3)
  assert.equal(value(snap, 'polyroute_requests_total', { model: 'test/broken', status: 'temporarily_unavailable' }), 1)
  assert.equal(value(snap, 'polyroute_errors_total', { code: 'temporarily_unavailable', provider: 'broken' }), 1)
  assert.equal(value(snap, 'polyroute_attempts_total', { provider: 'broken', outcome: 'overloaded' }), 2)
  assert.equal(value(snap, 'polyroute_fallbacks_total', { provider: 'broken' }), 1)
  assert.equal(value(snap, 'polyroute_generations_total', { fallback: 'true' }), 1)
  assert.equal(value(snap, 'polyroute_overhead_seconds'), 3)
  assert.equal(value(snap, 'polyroute_in_flight_requests'), 0)
  assert.equal(snap.polyroute_request_duration_seconds.type, 'histogram')
  assert.ok(router.metricsText().includes('polyroute_fallbacks_total{provider="broken"} 1\n'))

  await waitFor(() => generations.length === 3 && attempts.length === 5)
  assert.deepEqual(generations.slice(0, 2).map((g) => g.id), [ok.id, fb.id])
  assert.ok(generations.every((g) => g.overhead_ms >= 0))
  // Cost per key label: exactly what the ledger billed (the three generations of team-a).
  const billed = generations.filter((g) => g.user === 'team-a').reduce((n, g) => n + Number(g.cost), 0)
  const cost = value(snap, 'polyroute_cost_usd_total', { key: 'team-a' })
  assert.ok(billed > 0 && Math.abs(cost - billed) < 1e-12, `${cost} vs ${billed}`)
  const chain = attempts.filter((a) => a.generation_id === fb.id)
  assert.deepEqual(chain.map((a) => [a.index, a.code]), [[0, 'overloaded'], [1, 'success']])
  assert.equal(chain[0].status, 503)
  assert.ok(chain[0].message)
})

test('a throwing or rejecting hook never fails a request and is reported as a warning', async () => {
  const warnings = []
  const onWarning = (w) => warnings.push(String(w.message))
  process.on('warning', onWarning)
  try {
    const router = new Router({
      ...fixture(mock.url),
      hooks: {
        onAttempt: () => {
          throw new Error('hook failure (expected by the test)')
        },
        onGeneration: async () => {
          throw new Error('async hook failure (expected by the test)')
        },
      },
    })
    for (let i = 0; i < 3; i++) {
      const c = await router.chat({ model: 'test/chat', messages: hi(`n${i}`), provider: { order: ['alpha'] } })
      assert.equal(c.object, 'chat.completion')
    }
    await waitFor(() => warnings.length >= 6)
    assert.ok(warnings.some((w) => w.includes('hooks.onAttempt failed')))
    assert.ok(warnings.some((w) => w.includes('hooks.onGeneration failed')))
    assert.equal(value(router.metrics(), 'polyroute_requests_total', { status: 'ok' }), 3)
  } finally {
    process.off('warning', onWarning)
  }
})

test('hooks must be functions', () => {
  assert.throws(() => new Router({ readEnv: false, hooks: { onAttempt: 3 } }), TypeError)
})

test('traces: a request span under the caller\'s traceparent is exported over OTLP/HTTP', async () => {
  const { createServer } = await import('node:http')
  const bodies = []
  const server = createServer((req, res) => {
    const parts = []
    req.on('data', (c) => parts.push(c))
    req.on('end', () => {
      bodies.push({ path: req.url, body: Buffer.concat(parts) })
      res.writeHead(200, { 'content-length': 0 })
      res.end()
    })
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  try {
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736'
    const parent = '00f067aa0ba902b7'
    const router = new Router({
      ...fixture(mock.url),
      telemetry: { otlpEndpoint: `http://127.0.0.1:${server.address().port}`, serviceName: 'node-test' },
    })
    const c = await router.chat(
      { model: 'test/chat', messages: hi(), provider: { order: ['alpha'] } },
      { traceparent: `00-${trace}-${parent}-01` },
    )
    await router.flushTelemetry()
    assert.ok(bodies.length >= 1)
    assert.ok(bodies.every((b) => b.path === '/v1/traces'))
    // The protobuf carries the caller's trace id (in every span) and its span id (as the request span's parent),
    // the generation id and the GenAI attribute names.
    const all = Buffer.concat(bodies.map((b) => b.body))
    assert.ok(all.indexOf(Buffer.from(trace, 'hex')) >= 0)
    assert.ok(all.indexOf(Buffer.from(parent, 'hex')) >= 0)
    for (const s of [c.id, 'gen_ai.request.model', 'gen_ai.usage.output_tokens', 'node-test', 'chat test/chat']) {
      assert.ok(all.includes(s), s)
    }
  } finally {
    server.close()
  }
})
