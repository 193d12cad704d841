// The gateway (`polyroute serve` on the loopback mock) against OpenRouter's TypeScript SDK (`@openrouter/sdk`):
// every answer, chunk and error over HTTP validates against the SDK's zod schemas (raw HTTP, per dialect, streamed
// and not, tools, structured output, faults), then the SDK itself end to end. Run by scripts/test.d/wire.sh with
// URL and KEY set.
import assert from 'node:assert/strict'
import { OpenRouter } from '@openrouter/sdk'
import * as errors from '@openrouter/sdk/models/errors'
import * as schema from './openrouter-schema.mjs'

const BASE = `${process.env.URL}/api/v1`
const KEY = process.env.KEY
const HEADERS = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'x-openrouter-metadata': 'enabled' }
const DIALECTS = { openai: 'openai/gpt-4o-mini', anthropic: 'anthropic/claude-haiku-4.5', gemini: 'google/gemini-3.7-flash' }
const TOOLS = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { query: { type: 'string' } } } } }]
const JSON_SCHEMA = { type: 'json_schema', json_schema: { name: 'answer', strict: true, schema: { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] } } }
const VARIANTS = { plain: {}, tools: { tools: TOOLS }, json_schema: { response_format: JSON_SCHEMA } }
const body = (model, extra = {}, text = 'hello gateway') => ({ model, messages: [{ role: 'user', content: text }], ...extra })
const post = (b) => fetch(`${BASE}/chat/completions`, { method: 'POST', headers: HEADERS, body: JSON.stringify(b) })

async function sse(b) {
  const r = await post({ ...b, stream: true })
  if (r.status !== 200) return { status: r.status, events: [await r.json()], done: false }
  const text = await r.text()
  const datas = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6))
  const done = datas.at(-1) === '[DONE]'
  return { status: 200, events: datas.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d)), done }
}

let checked = 0
for (const [dialect, model] of Object.entries(DIALECTS)) {
  for (const [variant, extra] of Object.entries(VARIANTS)) {
    const r = await post(body(model, extra))
    assert.equal(r.status, 200, `${dialect} ${variant}`)
    const a = schema.answer(await r.json())
    assert.equal(a.choices[0].finishReason, variant === 'tools' ? 'tool_calls' : 'stop', `${dialect} ${variant}`)
    assert.equal(a.openrouterMetadata.strategy, 'direct')
    const s = await sse(body(model, extra))
    assert.ok(s.done, `${dialect} ${variant}: [DONE]`)
    schema.stream(s.events)
    checked += 2 + s.events.length
  }
}
for (const [model, status] of [['moonshotai/kimi-k3', 503], ['mistralai/mistral-small-2603', 429], ['acme/not-a-model', 400]]) {
  const r = await post(body(model))
  assert.equal(r.status, status, model)
  schema.error(status, await r.json())
  const s = await sse(body(model))
  assert.equal(s.status, status, model)
  schema.error(status, s.events[0])
  checked += 2
}
const cut = await sse(body('deepseek/deepseek-v4-flash', {}, 'one two three four five six'))
assert.ok(cut.done)
cut.events.forEach(schema.chunk)
assert.equal(cut.events.at(-2).error.code, 502)
assert.deepEqual(cut.events.at(-1).choices, [])
assert.ok(cut.events.at(-1).usage.completion_tokens >= 1)
checked += cut.events.length
console.log(`gateway wire: ${checked} answers, chunks and errors match @openrouter/sdk schemas`)

// The OpenRouter TypeScript SDK end to end.
const c = new OpenRouter({ apiKey: KEY, serverURL: BASE })
const msgs = [{ role: 'user', content: 'hello sdk' }]
const features = {}
const res = await c.chat.send({ chatRequest: { model: DIALECTS.openai, messages: msgs } })
assert.ok(String(res.choices[0].message.content).includes('hello sdk'))
assert.ok(res.usage.cost > 0 && res.usage.costDetails.upstreamInferencePromptCost > 0, JSON.stringify(res.usage))
features.chat = features.usage = features.cost = 'ok'

let text = ''
let usageChunks = 0
for await (const ch of await c.chat.send({ chatRequest: { model: DIALECTS.anthropic, messages: msgs, stream: true } })) {
  text += ch.choices[0]?.delta?.content ?? ''
  if (ch.usage) usageChunks += 1
}
assert.ok(text.includes('hello sdk'), text)
assert.equal(usageChunks, 1)
features.stream = 'ok'

const tools = await c.chat.send({ chatRequest: { model: DIALECTS.gemini, messages: msgs, tools: TOOLS } })
assert.equal(tools.choices[0].finishReason, 'tool_calls')
assert.equal(tools.choices[0].message.toolCalls[0].function.name, 'get_weather')
features.tools = 'ok'

const names = []
for await (const ch of await c.chat.send({ chatRequest: { model: DIALECTS.openai, messages: msgs, tools: TOOLS, stream: true } })) {
  for (const t of ch.choices[0]?.delta?.toolCalls ?? []) if (t.function?.name) names.push(t.function.name)
}
assert.deepEqual(names, ['get_weather'])
features['streamed tool calls'] = 'ok'

const js = await c.chat.send({ chatRequest: { model: DIALECTS.anthropic, messages: msgs, responseFormat: { type: 'json_schema', jsonSchema: JSON_SCHEMA.json_schema } } })
assert.equal(typeof JSON.parse(String(js.choices[0].message.content)), 'object')
features.json_schema = 'ok'

const fb = await c.chat.send({ xOpenRouterMetadata: 'enabled', chatRequest: { model: 'moonshotai/kimi-k3', models: ['openai/gpt-4o-mini'], messages: msgs } })
assert.equal(fb.model, 'openai/gpt-4o-mini')
assert.equal(fb.openrouterMetadata.strategy, 'fallback')
features.fallback = 'ok'

await assert.rejects(c.chat.send({ chatRequest: { model: 'acme/not-a-model', messages: msgs } }), (e) => {
  assert.ok(e instanceof errors.BadRequestResponseError, e.constructor.name)
  assert.equal(e.statusCode, 400)
  return true
})
features.error = 'ok'
console.log('openrouter typescript sdk over http: ' + Object.entries(features).map(([k, v]) => `${k} ${v}`).join(', '))
