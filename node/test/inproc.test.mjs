// The in-process fast paths of the package entry: `router.plan` built from numbered routes and heads (templates
// cached per router; the compact JSON text when a head is not numbered), streams iterated in batches of the
// engine's SSE events, and `router.fetch` over the flat native call. Each must give exactly what the plain paths
// give.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Router, ChatStream } from 'polyroute'
import { startMock, fixture } from '../support/mock.mjs'

let mock
let router
const hi = (text = 'hello there') => [{ role: 'user', content: text }]

before(async () => {
  mock = await startMock(['--chunks', '12'])
  router = new Router(fixture(mock.url))
})

after(() => mock?.stop())

test('plan: the same values and key order as planJson, for many models, twice (templates cached)', () => {
  const embedded = new Router({ readEnv: false })
  const models = embedded.models().filter((m) => (m.endpoints ?? []).length > 1).slice(0, 60)
  assert.ok(models.length > 10)
  for (let round = 0; round < 2; round++) {
    for (const m of models) {
      const req = { model: m.id, messages: hi(), max_tokens: 16 }
      for (const ctx of [undefined, {}, { seed: 7, credentials: m.endpoints.map((e) => e.provider) }]) {
        let want
        try {
          want = JSON.parse(embedded.planJson(JSON.stringify(req), ctx))
        } catch (e) {
          assert.throws(() => embedded.plan(req, ctx), { code: e.code })
          continue
        }
        assert.equal(JSON.stringify(embedded.plan(req, ctx)), JSON.stringify(want), m.id)
      }
    }
  }
})

test('plan: every attempt is a fresh object (mutating one plan leaves the next alone)', () => {
  const req = { model: 'test/chat', messages: hi() }
  const a = router.plan(req)
  a.attempts[0].prices.prompt = 'changed'
  a.attempts[0].provider = 'changed'
  const b = router.plan(req)
  assert.notEqual(b.attempts[0].prices.prompt, 'changed')
  assert.notEqual(b.attempts[0].provider, 'changed')
  assert.notEqual(a.attempts[0], b.attempts[0])
})

test('plan: the head is fresh too (mutating one plan leaves the next alone)', () => {
  const req = { model: 'test/chat', messages: hi() }
  const a = router.plan(req)
  a.models[0].id = 'changed'
  a.requested_models.push('changed')
  a.primary_prices.prompt = 'changed'
  a.excluded.push({ changed: true })
  const b = router.plan(req)
  assert.equal(JSON.stringify(b), router.planJson(JSON.stringify(req)))
  assert.notEqual(a.models, b.models)
})

test('plan: a plan longer than the number buffer, and a router decision (plan sent as text), equal planJson', () => {
  const embedded = new Router({ readEnv: false })
  const all = embedded.models()
  const credentials = [...new Set(all.flatMap((m) => (m.endpoints ?? []).map((e) => e.provider)))]
  const big = all.filter((m) => (m.endpoints ?? []).length > 4).sort((x, y) => y.endpoints.length - x.endpoints.length)
  const long = { model: big[0].id, models: big.slice(0, 3).map((m) => m.id), messages: hi() }
  const auto = { model: 'openrouter/auto', messages: hi() }
  for (let round = 0; round < 2; round++) {
    for (const req of [long, auto, long]) {
      const got = embedded.plan(req, { credentials })
      assert.equal(JSON.stringify(got), embedded.planJson(JSON.stringify(req), { credentials }))
      if (req === long) assert.ok(got.attempts.length > 21, `${got.attempts.length} attempts`)
      else assert.ok(got.router !== undefined)
    }
  }
})

test('plan: a request read as its strings (planParts) plans as its JSON text does; anything else crosses as text', () => {
  const all = new Router({ readEnv: false }).models()
  const wide = all.find((m) => (m.endpoints ?? []).length > 3)
  const model = wide.id
  const embedded = new Router({ readEnv: false, providers: Object.fromEntries(wide.endpoints.map((e) => [e.provider, { apiKey: 'sk-test-fake' }])) })
  let parts = 0
  embedded.planParts = function (...args) {
    parts++
    return Object.getPrototypeOf(this).planParts.apply(this, args)
  }
  const withGetter = { messages: hi() }
  Object.defineProperty(withGetter, 'model', { enumerable: true, get: () => model })
  class Req {
    constructor() {
      this.model = model
      this.messages = hi()
    }
  }
  const bare = Object.assign(Object.create(null), { model, messages: hi() })
  // An own toJSON that no key shows (not enumerable).
  const hiddenToJSON = { model, messages: hi() }
  Object.defineProperty(hiddenToJSON, 'toJSON', { value: () => ({ model: 'no/such-model', messages: hi() }) })
  const messagesWithToJSON = hi()
  messagesWithToJSON.toJSON = () => [{ role: 'user', content: 'from toJSON' }]
  // [request, whether it is read as its strings]
  const cases = [
    [{ model, messages: hi() }, true],
    [{ messages: [{ content: 'c', role: 'system' }, ...hi()], model, max_tokens: 64 }, true],
    [{ model, messages: hi(), max_tokens: undefined }, true],
    [{ model, messages: hi(), max_tokens: 0 }, true],
    [{ model, messages: [] }, true],
    [{ model: 'no/such-model', messages: hi() }, true],
    [{ model: '', messages: hi() }, true],
    [{ model, messages: hi(), max_tokens: NaN }, false],
    [{ model, messages: hi(), max_tokens: -1 }, false],
    [{ model, messages: hi(), max_tokens: 1.5 }, false],
    [{ model, messages: hi(), max_tokens: null }, false],
    [{ model, messages: hi(), temperature: 0.5 }, false],
    [{ model, messages: [{ role: 'user', content: 'x', name: 'n' }] }, false],
    [{ model, messages: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }] }, false],
    [{ model, messages: [{ role: 'user', content: null }] }, false],
    [{ model, messages: [{ role: 'user', content: undefined }] }, false],
    [{ model, messages: [{ role: 'robot', content: 'x' }] }, false],
    [{ model, messages: [{ role: 'user', content: 'lone \ud800 surrogate' }] }, false],
    [{ model: `${model}\udc00`, messages: hi() }, false],
    [{ model, messages: hi(), toJSON: () => ({ model, messages: hi('from toJSON') }) }, false],
    [{ model, messages: messagesWithToJSON }, false],
    [{ model, messages: [{ role: 'user', content: 'x', toJSON: () => ({ role: 'user', content: 'y' }) }] }, false],
    [{ model, messages: [, { role: 'user', content: 'x' }] }, false], // eslint-disable-line no-sparse-arrays
    [{ model, messages: 'nope' }, false],
    [{ messages: hi() }, false],
    [withGetter, true],
    [new Req(), false],
    [bare, false],
    [hiddenToJSON, false],
    [null, false],
    ['text', false],
  ]
  const check = (req, fast) => {
    const before = parts
    let want
    try {
      want = embedded.planJson(JSON.stringify(req ?? null))
    } catch (e) {
      assert.throws(() => embedded.plan(req), (got) => got.code === e.code && got.message === e.message, JSON.stringify(req))
      assert.equal(parts - before, fast ? 1 : 0, JSON.stringify(req))
      return
    }
    assert.equal(JSON.stringify(embedded.plan(req)), want, JSON.stringify(req))
    assert.equal(parts - before, fast ? 1 : 0, JSON.stringify(req))
  }
  for (const [req, fast] of cases) check(req, fast)
  // A toJSON every object inherits (not enumerable, so no key shows it): every request crosses as text, and
  // plans as that text says (here: another model).
  Object.defineProperty(Object.prototype, 'toJSON', { // eslint-disable-line no-extend-native
    configurable: true,
    writable: true,
    value: function () {
      return Array.isArray(this) || this.role !== undefined ? this : { ...this, model: 'no/such-model' }
    },
  })
  try {
    check({ model, messages: hi() }, false)
    assert.throws(() => embedded.plan({ model, messages: hi() }), { code: 'model_not_found' })
  } finally {
    delete Object.prototype.toJSON
  }
  assert.ok(parts >= 7)
})

test('plan: an invalid request still throws invalid_request naming the field', () => {
  assert.throws(() => router.plan({ model: 'test/chat', messages: 'nope' }), (e) => e.code === 'invalid_request')
  assert.throws(() => router.plan({ model: 'test/chat', messages: hi(), max_tokens: 'x' }), (e) => e.code === 'invalid_request')
})

async function collect(stream) {
  const out = []
  for await (const c of stream) out.push(c)
  return out
}

function text(chunks) {
  return chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('')
}

test('stream: one chunk per iteration, in order, ending with usage; still a ChatStream', async () => {
  const s = router.stream({ model: 'test/chat', messages: hi('batched chunks'), provider: { order: ['alpha'] } })
  assert.ok(s instanceof ChatStream)
  const chunks = await collect(s)
  assert.ok(chunks.length >= 13, `${chunks.length} chunks`)
  for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk')
  assert.ok(text(chunks).includes('batched chunks'))
  assert.equal(typeof chunks.at(-1).usage.cost, 'number')
  const it = s[Symbol.asyncIterator]()
  assert.deepEqual(await it.next(), { value: undefined, done: true })
})

test('stream: next() called many times without waiting yields the chunks in order', async () => {
  const req = { model: 'test/chat', messages: hi('concurrent next calls'), provider: { order: ['alpha'] } }
  const seq = await collect(router.stream(req))
  const it = router.stream(req)[Symbol.asyncIterator]()
  const results = await Promise.all(Array.from({ length: seq.length + 2 }, () => it.next()))
  const values = results.filter((r) => !r.done).map((r) => r.value)
  assert.equal(values.length, seq.length)
  assert.ok(results.slice(seq.length).every((r) => r.done))
  assert.equal(text(values), text(seq))
  assert.deepEqual(values.map((c) => Object.keys(c)), seq.map((c) => Object.keys(c)))
})

test('stream: the chunks are those of the SSE answer of router.fetch (same keys, text and usage)', async () => {
  // Several message lengths: the events' line ends fall at every offset of the addon's 8-byte newline search.
  for (const words of ['same chunks both ways', 'x', 'ab cde fghijkl mnopqrstu vwxyz0123 456789abcdef ghijklmnopqrstuv']) {
    const req = { model: 'test/chat', messages: hi(words), provider: { order: ['alpha'] } }
    const chunks = await collect(router.stream(req))
    const r = await router.fetch('http://polyroute.local/api/v1/chat/completions', {
      method: 'POST',
      body: JSON.stringify({ ...req, stream: true }),
    })
    const sse = (await r.text()).split('\n\n').filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]')
    const viaFetch = sse.map((e) => JSON.parse(e.slice(6)))
    assert.equal(chunks.length, viaFetch.length)
    assert.deepEqual(chunks.map((c) => Object.keys(c)), viaFetch.map((c) => Object.keys(c)))
    assert.equal(text(chunks), text(viaFetch))
    assert.ok(text(chunks).includes(words.split(' ').at(-1)), text(chunks))
    assert.deepEqual(Object.keys(chunks.at(-1).usage), Object.keys(viaFetch.at(-1).usage))
  }
})

test('stream: return() ends the iteration', async () => {
  const it = router.stream({ model: 'test/chat', messages: hi('stop early') })[Symbol.asyncIterator]()
  const first = await it.next()
  assert.equal(first.done, false)
  assert.deepEqual(await it.return(), { value: undefined, done: true })
  assert.deepEqual(await it.next(), { value: undefined, done: true })
})

test('messagesStream: events in batches, the same sequence; a refused request rejects the first next()', async () => {
  const events = await collect(router.messagesStream({ model: 'test/chat', max_tokens: 64, messages: hi('anthropic events') }))
  assert.equal(events[0].type, 'message_start')
  assert.equal(events.at(-1).type, 'message_stop')
  const bad = router.messagesStream({ model: 'test/chat', messages: hi() })
  await assert.rejects(bad[Symbol.asyncIterator]().next(), (e) => e.code === 'invalid_request')
})

test('fetch: request headers cross as they are (empty values, colons and spaces, a Headers object, none at all)', async () => {
  const body = JSON.stringify({ model: 'test/chat', messages: hi('headers'), provider: { order: ['alpha'] } })
  const url = 'http://polyroute.local/api/v1/chat/completions'
  const headers = new Headers({ 'x-empty': '', 'content-type': 'application/json', 'X-Title': 'Title: with  spaces', 'HTTP-Referer': 'https://hdr.example/a?b=c' })
  for (let i = 0; i < 12; i++) headers.append(`x-extra-${i}`, i % 2 ? '' : `v${i}`)
  const r = await router.fetch(url, { method: 'POST', headers, body })
  assert.equal(r.status, 200)
  const rec = await router.generation((await r.json()).id)
  assert.equal(rec.app_title, 'Title: with  spaces')
  assert.equal(rec.app_referer, 'https://hdr.example/a?b=c')
  const bare = await router.fetch('http://polyroute.local/api/v1/models/count')
  assert.equal(bare.status, 200)
  assert.equal(typeof (await bare.json()).data.count, 'number')
})

test('fetch: a body given as bytes, text or a stream answers alike; a streamed answer is the SSE of the chunks', async () => {
  const body = JSON.stringify({ model: 'test/chat', messages: hi('bytes body'), provider: { order: ['alpha'] } })
  const url = 'http://polyroute.local/api/v1/chat/completions'
  const headers = { 'content-type': 'application/json' }
  for (const b of [body, new TextEncoder().encode(body), Buffer.from(body), new Blob([body])]) {
    const r = await router.fetch(url, { method: 'POST', headers, body: b })
    assert.equal(r.status, 200)
    const c = await r.json()
    assert.ok(c.choices[0].message.content.includes('bytes body'))
  }
  const r = await router.fetch(url, { method: 'POST', headers, body: body.replace('{', '{"stream":true,') })
  assert.equal(r.headers.get('content-type'), 'text/event-stream')
  const sse = await r.text()
  const datas = sse.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6))
  assert.equal(datas.at(-1), '[DONE]')
  const chunks = datas.slice(0, -1).map((d) => JSON.parse(d))
  assert.ok(text(chunks).includes('bytes body'))
  assert.equal(typeof chunks.at(-1).usage.cost, 'number')
})

test('fetch: cancelling the body stream ends it', async () => {
  const body = JSON.stringify({ model: 'test/chat', messages: hi('cancel me'), stream: true })
  const r = await router.fetch('http://polyroute.local/api/v1/chat/completions', { method: 'POST', body })
  const reader = r.body.getReader()
  const first = await reader.read()
  assert.equal(first.done, false)
  await reader.cancel()
  assert.equal((await reader.read()).done, true)
})

test('fetch and stream read a burst ahead: what arrived while JavaScript was busy is taken in one read', async () => {
  // The mock writes 64 events back to back. After the first read the engine keeps reading them on its own
  // threads, so each later read takes everything that has arrived: a handful of reads, not one per event.
  const burst = await startMock(['--keep-requests', '0', '--chunks', '64'])
  try {
    const r = new Router(fixture(burst.url))
    const req = { model: 'test/chat', messages: hi('burst'), stream: true, provider: { order: ['alpha'] } }
    const a = await r.fetchCall('POST', '/api/v1/chat/completions', 'content-type\napplication/json', JSON.stringify(req))
    let sse = (await a.stream.read()).toString()
    const pause = (ms) => new Promise((done) => setTimeout(done, ms))
    await pause(300)
    let reads = 0
    for (let i = 0; i < 200 && !sse.includes('data: [DONE]'); i++) {
      if (i > 0) await pause(25)
      const b = a.stream.readReady()
      if (b !== null) {
        reads++
        sse += b.toString()
      }
    }
    const events = sse.split('\n\n').filter((e) => e.startsWith('data: '))
    assert.equal(events.at(-1), 'data: [DONE]')
    assert.ok(events.length > 64, `${events.length} events`)
    assert.equal(typeof JSON.parse(events.at(-2).slice(6)).usage.cost, 'number')
    assert.ok(reads <= 3, `${reads} reads after the first`)

    const s = r.stream(req)
    let batches = 0
    let items = 0
    for (let i = 0; i < 200; i++) {
      const got = i === 0 ? await s.nextBatch() : s.takeReady()
      if (got === null) break
      if (got !== '') {
        batches++
        items += JSON.parse(got).length
      }
      await pause(i === 0 ? 300 : 25)
    }
    assert.equal(items, events.length - 1, 'the chunks of the SSE answer')
    assert.ok(batches <= 4, `${batches} batches`)
  } finally {
    burst.stop()
  }
})
