// End to end against the loopback mock: the Router directly and the official `openai` SDK through
// `router.fetch` (no server, no network hop). Covers non-streaming, streaming, tools, JSON schema, model fallback,
// provider routing and errors.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'
import { Router } from 'polyroute'
import { startMock, fixture } from '../support/mock.mjs'

let mock
let router
let client
const hi = (text = 'hello there') => [{ role: 'user', content: text }]

before(async () => {
  mock = await startMock()
  router = new Router(fixture(mock.url))
  client = new OpenAI({ apiKey: 'unused', baseURL: 'http://polyroute.local/api/v1', fetch: router.fetch, maxRetries: 0 })
})

after(() => mock?.stop())

test('chat: a completion with provider, gen id and cost', async () => {
  const c = await router.chat({ model: 'test/chat', messages: hi('ping'), max_tokens: 32, provider: { order: ['alpha'] } })
  assert.equal(c.object, 'chat.completion')
  assert.match(c.id, /^gen-/)
  assert.equal(c.provider, 'Alpha Cloud')
  assert.ok(c.choices[0].message.content.includes('ping'))
  assert.ok(c.usage.prompt_tokens > 0)
  assert.equal(typeof c.usage.cost, 'number')
  const record = await router.generation(c.id)
  assert.equal(record.id, c.id)
  assert.equal(record.provider, 'alpha')
  assert.equal(await router.generation('gen-missing'), null)
})

test('stream: chunks end with usage and cost', async () => {
  let text = ''
  let last
  for await (const chunk of router.stream({ model: 'test/chat', messages: hi('stream me'), stream: true, provider: { order: ['beta'] } })) {
    assert.equal(chunk.object, 'chat.completion.chunk')
    text += chunk.choices[0]?.delta?.content ?? ''
    last = chunk
  }
  assert.ok(text.includes('stream me'), text)
  assert.deepEqual(last.choices, [])
  assert.equal(typeof last.usage.cost, 'number')
})

test('stream: breaking out early cancels cleanly', async () => {
  let n = 0
  for await (const chunk of router.stream({ model: 'test/chat', messages: hi('a b c d e f g h'), stream: true })) {
    assert.ok(chunk)
    n += 1
    break
  }
  assert.equal(n, 1)
})

test('provider routing: order picks the provider', async () => {
  for (const slug of ['alpha', 'beta']) {
    const c = await router.chat({ model: 'test/chat', messages: hi(), provider: { order: [slug], allow_fallbacks: false } })
    assert.equal(c.provider, `${slug[0].toUpperCase()}${slug.slice(1)} Cloud`)
  }
  const only = await router.chat({ model: 'test/chat', messages: hi(), provider: { only: ['beta'] } })
  assert.equal(only.provider, 'Beta Cloud')
})

test('model fallback: a failing model falls back to the next', async () => {
  const c = await router.chat({ model: 'test/broken', models: ['test/chat'], messages: hi('fallback') })
  assert.equal(c.model, 'test/chat')
  assert.ok(['Alpha Cloud', 'Beta Cloud'].includes(c.provider))
  const record = await router.generation(c.id)
  assert.equal(record.attempts[0].provider, 'broken')
  assert.equal(record.attempts[0].status, 503)
})

test('errors: all attempts failing rejects with a PolyrouteError', async () => {
  await assert.rejects(router.chat({ model: 'test/broken', messages: hi() }), (e) => {
    assert.equal(e.name, 'PolyrouteError')
    assert.equal(e.code, 'temporarily_unavailable')
    assert.equal(e.status, 503)
    assert.equal(e.retryable, true)
    assert.equal(e.attempts.length, 1)
    assert.equal(e.attempts[0].provider, 'broken')
    assert.equal(e.body.error.code, 503)
    return true
  })
  await assert.rejects(router.chat({ model: 'test/limited', messages: hi() }), (e) => e.code === 'capacity_exhausted' && e.status === 429)
  await assert.rejects(router.chat({ model: 'test/chat', messages: 'nope' }), (e) => e.code === 'invalid_request')
  const stream = router.stream({ model: 'test/broken', messages: hi(), stream: true })
  await assert.rejects(async () => {
    for await (const chunk of stream) assert.fail(`unexpected chunk ${JSON.stringify(chunk)}`)
  }, (e) => e.code === 'temporarily_unavailable')
})

test('tools: forwarded upstream and tool calls returned', async () => {
  const tools = [{ type: 'function', function: { name: 'GetWeatherArgs', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }]
  await mock.reset()
  const c = await router.chat({ model: 'test/tools', messages: hi('weather?'), tools, tool_choice: 'auto' })
  assert.equal(c.choices[0].finish_reason, 'tool_calls')
  assert.ok(c.choices[0].message.tool_calls.length >= 2)
  assert.equal(c.choices[0].message.tool_calls[0].function.name, 'GetWeatherArgs')
  const sent = (await mock.calls()).requests.at(-1).body
  assert.deepEqual(sent.tools, tools)
})

test('openai SDK: chat.completions.create through router.fetch', async () => {
  const c = await client.chat.completions.create({ model: 'test/chat', messages: hi('sdk'), max_tokens: 16 })
  assert.ok(c.choices[0].message.content.includes('sdk'))
  assert.match(c.id, /^gen-/)
  assert.equal(typeof c.usage.cost, 'number')
})

test('openai SDK: streaming', async () => {
  const stream = await client.chat.completions.create({ model: 'test/chat', messages: hi('sdk stream'), stream: true })
  let text = ''
  let usage
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? ''
    usage = chunk.usage ?? usage
  }
  assert.ok(text.includes('sdk stream'), text)
  assert.equal(typeof usage.cost, 'number')
})

test('openai SDK: tools and JSON schema', async () => {
  const tools = [{ type: 'function', function: { name: 'GetWeatherArgs', parameters: { type: 'object', properties: {} } } }]
  const t = await client.chat.completions.create({ model: 'test/tools', messages: hi('weather?'), tools })
  assert.equal(t.choices[0].message.tool_calls[0].type, 'function')
  await mock.reset()
  const response_format = { type: 'json_schema', json_schema: { name: 'weather', strict: true, schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }
  const s = await client.chat.completions.create({ model: 'test/schema', messages: hi('json please'), response_format })
  assert.equal(JSON.parse(s.choices[0].message.content).city, 'San Francisco')
  const sent = (await mock.calls()).requests.at(-1).body
  assert.deepEqual(sent.response_format, response_format)
})

test('openai SDK: OpenRouter extensions (models, provider) in the body', async () => {
  const c = await client.chat.completions.create({
    model: 'test/broken',
    messages: hi('extensions'),
    // @ts-ignore OpenRouter fields
    models: ['test/chat'],
    provider: { order: ['beta'] },
  })
  assert.equal(c.model, 'test/chat')
  assert.equal(c.provider, 'Beta Cloud')
})

test('openai SDK: models.list', async () => {
  const ids = []
  for await (const m of client.models.list()) ids.push(m.id)
  assert.ok(ids.includes('test/chat'))
  // models.retrieve (GET …/models/{author}/{slug}), OpenRouter's …/model/{author}/{slug} and …/models/count
  assert.equal((await client.models.retrieve('test/chat')).id, 'test/chat')
  await assert.rejects(client.models.retrieve('test/none'), (e) => e instanceof OpenAI.NotFoundError)
  assert.equal((await client.get('/model/test/chat')).id, 'test/chat')
  assert.equal((await client.get('/models/count')).data.count, ids.length)
})

test('openai SDK: failures are APIError subclasses with the OpenRouter envelope', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'nope/missing', messages: hi() }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, e.constructor.name)
    assert.equal(e.status, 400)
    assert.equal(e.error.metadata.polyroute_code, 'model_not_found')
    return true
  })
  await assert.rejects(client.chat.completions.create({ model: 'test/broken', messages: hi() }), (e) => {
    assert.ok(e instanceof OpenAI.InternalServerError, e.constructor.name)
    assert.equal(e.status, 503)
    assert.equal(e.error.availability.code, 'temporarily_unavailable')
    return true
  })
  await assert.rejects(client.chat.completions.create({ model: 'test/limited', messages: hi(), stream: true }), (e) => {
    assert.ok(e instanceof OpenAI.RateLimitError, e.constructor.name)
    assert.equal(e.status, 429)
    return true
  })
})

test('request options: metadata lists every attempt; attribution headers pass through fetch', async () => {
  const c = await router.chat({ model: 'test/broken', models: ['test/chat'], messages: hi() }, { metadata: true, user: 'u-1', sessionId: 's-1' })
  assert.equal(c.openrouter_metadata.generation_id, c.id)
  assert.deepEqual(c.openrouter_metadata.attempts.map((a) => a.provider).slice(0, 1), ['broken'])
  const record = await router.generation(c.id)
  assert.equal(record.user, 'u-1')
  const viaSdk = await client.chat.completions.create(
    { model: 'test/chat', messages: hi() },
    { headers: { 'HTTP-Referer': 'https://app.example', 'X-Title': 'Bench App', 'x-session-id': 's-2' } },
  )
  const rec = await router.generation(viaSdk.id)
  assert.equal(rec.app_referer, 'https://app.example')
  assert.equal(rec.app_title, 'Bench App')
})

test('stream: leaving the loop aborts the upstream stream', async () => {
  await mock.reset()
  let n = 0
  const long = hi('one two three four five six seven eight nine ten eleven twelve')
  for await (const chunk of router.stream({ model: 'test/slow', messages: long, stream: true })) {
    assert.ok(chunk)
    if (++n === 1) break
  }
  let aborted = 0
  for (let i = 0; i < 50 && aborted === 0; i++) {
    await new Promise((r) => setTimeout(r, 50))
    aborted = (await mock.calls()).aborted_streams
  }
  assert.equal(aborted, 1)
})

test('openai SDK: aborting a stream aborts upstream', async () => {
  await mock.reset()
  const long = hi('one two three four five six seven eight nine ten eleven twelve')
  const stream = await client.chat.completions.create({ model: 'test/slow', messages: long, stream: true })
  for await (const chunk of stream) {
    assert.ok(chunk)
    stream.controller.abort()
    break
  }
  let aborted = 0
  for (let i = 0; i < 50 && aborted === 0; i++) {
    await new Promise((r) => setTimeout(r, 50))
    aborted = (await mock.calls()).aborted_streams
  }
  assert.equal(aborted, 1)
})

test('concurrency: 64 requests at once on one router', async () => {
  const results = await Promise.all(
    Array.from({ length: 64 }, (_, i) =>
      i % 2 ? router.chat({ model: 'test/chat', messages: hi(`n${i}`) }) : client.chat.completions.create({ model: 'test/chat', messages: hi(`n${i}`) }),
    ),
  )
  results.forEach((c, i) => assert.ok(c.choices[0].message.content.includes(`n${i}`)))
  assert.equal(new Set(results.map((c) => c.id)).size, 64)
})
