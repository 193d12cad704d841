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
