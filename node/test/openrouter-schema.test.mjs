// Everything the in-process Router emits validates against the OpenRouter TypeScript SDK's own schemas
// (`@openrouter/sdk`): per dialect (openai, anthropic, gemini through the loopback mock), streamed and not, plain,
// tools and structured output, each fault class (provider errors before content, a cut stream, an unknown model),
// and fallback with `openrouter_metadata`.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Router } from 'polyroute'
import { OpenRouter, HTTPClient } from '@openrouter/sdk'
import * as orErrors from '@openrouter/sdk/models/errors'
import { startMock, FAKE_KEY } from '../support/mock.mjs'
import * as schema from '../support/openrouter-schema.mjs'

// slug -> [dialect, x-mock-fault]
const PROVIDERS = {
  oa: ['openai', 'ok'],
  an: ['anthropic', 'ok'],
  ge: ['gemini', 'ok'],
  'oa-down': ['openai', '503'],
  'an-down': ['anthropic', '503'],
  'ge-limited': ['gemini', '429'],
  'oa-garbage': ['openai', 'garbage'],
  'oa-cut': ['openai', 'cut'],
  'an-cut': ['anthropic', 'cut'],
  'ge-cut': ['gemini', 'cut'],
}
const PARAMS = ['max_tokens', 'temperature', 'tools', 'tool_choice', 'response_format', 'structured_outputs', 'stream']
const TOOLS = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { query: { type: 'string' } } } } }]
const JSON_SCHEMA = { type: 'json_schema', json_schema: { name: 'answer', strict: true, schema: { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] } } }
const VARIANTS = { plain: {}, tools: { tools: TOOLS }, json_schema: { response_format: JSON_SCHEMA } }
const DIALECTS = { openai: 'test/oa', anthropic: 'test/an', gemini: 'test/ge' }

let mock
let router
const req = (model, extra = {}, text = 'hello there') => ({ model, messages: [{ role: 'user', content: text }], ...extra })

before(async () => {
  mock = await startMock()
  const providers = Object.entries(PROVIDERS).map(([slug, [dialect]]) => ({
    slug,
    name: slug.toUpperCase(),
    dialect,
    base_url: dialect === 'openai' ? `${mock.url}/v1` : mock.url,
    api_key_env: 'POLYROUTE_TEST_NEVER_SET_SCHEMA',
  }))
  const models = Object.keys(PROVIDERS).map((slug) => ({
    id: `test/${slug}`,
    name: slug,
    created: 1_700_000_000,
    context_length: 32768,
    architecture: { modality: 'text->text', input_modalities: ['text'], output_modalities: ['text'], tokenizer: 'Other' },
    pricing: { prompt: '0.000001', completion: '0.000002' },
    top_provider: { context_length: 32768, max_completion_tokens: 4096, is_moderated: false },
    supported_parameters: PARAMS,
    endpoints: [{ provider: slug, provider_name: slug.toUpperCase(), tag: slug, provider_model_id: `${slug}-up`, context_length: 32768, pricing: { prompt: '0.000001', completion: '0.000002' }, supported_parameters: PARAMS }],
  }))
  router = new Router({
    catalog: { version: 1, providers, models },
    readEnv: false,
    timeouts: { connectMs: 1000, firstTokenMs: 5000, idleMs: 5000, totalMs: 20_000 },
    providers: Object.fromEntries(Object.entries(PROVIDERS).map(([slug, [, fault]]) => [slug, { apiKey: FAKE_KEY, headers: { 'x-mock-fault': fault } }])),
  })
})

after(() => mock?.stop())

async function collect(it) {
  const out = []
  for await (const c of it) out.push(c)
  return out
}

for (const [dialect, model] of Object.entries(DIALECTS)) {
  for (const [variant, extra] of Object.entries(VARIANTS)) {
    test(`${dialect} ${variant}: answer and stream match @openrouter/sdk`, async () => {
      const a = await router.chat(req(model, extra), { metadata: true })
      const r = schema.answer(a)
      assert.equal(r.choices[0].finishReason, variant === 'tools' ? 'tool_calls' : 'stop')
      assert.equal(r.openrouterMetadata.strategy, 'direct')
      if (dialect !== 'openai') assert.equal(a.system_fingerprint, null)
      const chunks = await collect(router.stream(req(model, { ...extra, stream: true }), { metadata: true }))
      schema.stream(chunks)
      assert.ok(chunks.at(-1).openrouter_metadata, 'metadata rides on the last chunk')
      if (variant === 'tools') {
        const calls = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? [])
        assert.equal(calls[0].function.name, 'get_weather')
      }
    })
  }
}

test('fallback: openrouter_metadata says fallback, attempt 2', async () => {
  const a = await router.chat(req('test/oa-down', { models: ['test/oa'] }), { metadata: true })
  const r = schema.answer(a)
  assert.equal(r.openrouterMetadata.strategy, 'fallback')
  assert.equal(r.openrouterMetadata.attempt, 2)
  assert.deepEqual(r.openrouterMetadata.attempts.map((x) => x.status), [503, 200])
})

for (const [model, status] of [['test/oa-down', 503], ['test/an-down', 503], ['test/ge-limited', 429], ['test/oa-garbage', 503], ['acme/not-a-model', 400]]) {
  test(`error ${model}: body matches @openrouter/sdk (${status})`, async () => {
    await assert.rejects(router.chat(req(model)), (e) => {
      assert.equal(e.status, status)
      schema.error(status, e.body)
      return true
    })
    await assert.rejects(collect(router.stream(req(model, { stream: true }))), (e) => {
      schema.error(e.status, e.body)
      return true
    })
  })
}

for (const slug of ['oa-cut', 'an-cut', 'ge-cut']) {
  test(`${slug}: a stream cut after content ends with the error chunk, then the billed usage`, async () => {
    const chunks = await collect(router.stream(req(`test/${slug}`, { stream: true }, 'one two three four five six')))
    chunks.forEach(schema.chunk)
    const errs = chunks.filter((c) => c.error)
    assert.equal(errs.length, 1)
    assert.equal(chunks.indexOf(errs[0]), chunks.length - 2)
    assert.equal(errs[0].error.code, 502)
    assert.doesNotMatch(errs[0].error.message, /decoding/)
    assert.deepEqual(chunks.at(-1).choices, [])
    assert.ok(chunks.at(-1).usage.completion_tokens >= 1)
  })
}

test('the OpenRouter TypeScript SDK itself, in process through router.fetch', async () => {
  const c = new OpenRouter({ apiKey: 'sk-test-fake', serverURL: 'http://polyroute.local/api/v1', httpClient: new HTTPClient({ fetcher: router.fetch }) })
  const msgs = [{ role: 'user', content: 'hello sdk' }]
  const res = await c.chat.send({ chatRequest: { model: 'test/oa', messages: msgs } })
  assert.ok(String(res.choices[0].message.content).includes('hello sdk'))
  assert.ok(res.usage.costDetails.upstreamInferenceCompletionsCost > 0)
  let text = ''
  let usageChunks = 0
  for await (const ch of await c.chat.send({ chatRequest: { model: 'test/an', messages: msgs, stream: true } })) {
    text += ch.choices[0]?.delta?.content ?? ''
    if (ch.usage) usageChunks += 1
  }
  assert.ok(text.includes('hello sdk'), text)
  assert.equal(usageChunks, 1)
  const tools = await c.chat.send({ chatRequest: { model: 'test/ge', messages: msgs, tools: TOOLS } })
  assert.equal(tools.choices[0].message.toolCalls[0].function.name, 'get_weather')
  const names = []
  for await (const ch of await c.chat.send({ chatRequest: { model: 'test/oa', messages: msgs, tools: TOOLS, stream: true } })) {
    for (const t of ch.choices[0]?.delta?.toolCalls ?? []) if (t.function?.name) names.push(t.function.name)
  }
  assert.deepEqual(names, ['get_weather'])
  const js = await c.chat.send({ chatRequest: { model: 'test/an', messages: msgs, responseFormat: { type: 'json_schema', jsonSchema: JSON_SCHEMA.json_schema } } })
  assert.equal(typeof JSON.parse(String(js.choices[0].message.content)), 'object')
  const fb = await c.chat.send({ chatRequest: { model: 'test/oa-down', models: ['test/oa'], messages: msgs } })
  assert.equal(fb.model, 'test/oa')
  await assert.rejects(c.chat.send({ chatRequest: { model: 'acme/not-a-model', messages: msgs } }), (e) => e instanceof orErrors.BadRequestResponseError && e.statusCode === 400)
})
