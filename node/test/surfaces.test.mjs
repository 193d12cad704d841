// router.messages / messagesStream (Anthropic Messages) and router.responses / responsesStream (OpenAI Responses)
// against the loopback mock: answers with cost, streamed events, errors that name the field.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Router } from 'polyroute'
import { startMock, fixture } from '../support/mock.mjs'

let mock
let router
const body = { model: 'test/chat', max_tokens: 32, messages: [{ role: 'user', content: 'hi node' }], provider: { order: ['alpha'] } }

before(async () => {
  mock = await startMock()
  router = new Router(fixture(mock.url))
})

after(() => mock?.stop())

test('messages: an Anthropic message with cost, and its stream of events', async () => {
  const m = await router.messages(body)
  assert.equal(m.type, 'message')
  assert.ok(m.content[0].text.endsWith('hi node'), m.content[0].text)
  assert.equal(m.stop_reason, 'end_turn')
  assert.equal(typeof m.usage.cost, 'number')
  const types = []
  let text = ''
  for await (const e of router.messagesStream({ ...body, stream: true })) {
    types.push(e.type)
    if (e.type === 'content_block_delta') text += e.delta.text ?? ''
  }
  assert.deepEqual(types.slice(0, 2), ['message_start', 'ping'])
  assert.equal(types.at(-1), 'message_stop')
  assert.ok(text.endsWith('hi node'), text)
})

test('responses: a response object with cost, and its stream of events', async () => {
  const r = await router.responses({ model: 'test/chat', input: 'hello responses', provider: { order: ['alpha'] } })
  assert.equal(r.object, 'response')
  assert.equal(r.status, 'completed')
  assert.ok(r.output[0].content[0].text.endsWith('hello responses'))
  let last
  for await (const e of router.responsesStream({ model: 'test/chat', input: 'streamed', stream: true })) last = e
  assert.equal(last.type, 'response.completed')
  assert.equal(typeof last.response.usage.cost, 'number')
})

test('errors name the field; stateful Responses are refused', async () => {
  await assert.rejects(router.messages({ model: 'test/chat', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e.code === 'invalid_request' && /max_tokens/.test(e.message))
  await assert.rejects(router.responses({ model: 'test/chat', input: 'x', store: true }),
    (e) => e.code === 'invalid_request' && /stateless/.test(e.message))
  await assert.rejects(async () => { for await (const _ of router.responsesStream({ model: 'test/chat', input: 'x', previous_response_id: 'r' })) {} },
    (e) => e.code === 'invalid_request')
})

test('router.fetch serves …/messages and …/responses, JSON and SSE events', async () => {
  const post = (path, body) => router.fetch(`http://polyroute.local${path}`, { method: 'POST', body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' } })
  let r = await post('/v1/messages', body)
  assert.equal(r.status, 200)
  assert.ok((await r.json()).content[0].text.endsWith('hi node'))
  r = await post('/v1/messages', { ...body, stream: true })
  assert.equal(r.headers.get('content-type'), 'text/event-stream')
  const text = await r.text()
  assert.ok(text.startsWith('event: message_start\ndata: {'), text)
  assert.ok(text.trimEnd().endsWith('event: message_stop\ndata: {"type":"message_stop"}'), text)
  r = await post('/v1/messages', { model: 'acme/nope', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] })
  assert.equal(r.status, 400)
  assert.equal((await r.json()).error.type, 'invalid_request_error')
  r = await post('/api/v1/responses', { model: 'test/chat', input: 'fetch me', stream: true })
  assert.ok((await r.text()).includes('event: response.completed\n'))
  r = await post('/api/v1/responses', { model: 'test/chat', input: 'x', previous_response_id: 'r' })
  assert.equal(r.status, 400)
  assert.match((await r.json()).error.message, /stateless/)
})
