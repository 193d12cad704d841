// Typed usage of the public API; `tsc --noEmit -p test/types` must accept it (and the `@ts-expect-error` lines
// must stay errors).
import OpenAI from 'openai'
import {
  Router,
  ErrorCode,
  allCodes,
  isPolyrouteError,
  validateRequest,
  type ChatCompletion,
  type ChatCompletionChunk,
  type CostBreakdown,
  type Embeddings,
  type Generation,
  type Model,
  type Plan,
  type PolyrouteError,
  type RouterOptions,
} from 'polyroute'

const options: RouterOptions = {
  catalog: { version: 1, providers: [], models: [] },
  providers: { openai: { apiKey: 'sk-test-fake', baseUrl: 'http://127.0.0.1:8000/v1', headers: { 'x-extra': '1' } } },
  readEnv: false,
  timeouts: { connectMs: 500, totalMs: 10_000 },
}
const router = new Router(options)

const request = {
  model: 'openai/gpt-4o-mini',
  models: ['anthropic/claude-3.5-haiku'],
  messages: [{ role: 'user' as const, content: 'hi' }],
  provider: { order: ['openai'], allow_fallbacks: true, sort: 'price' as const },
}

const plan: Plan = router.plan(request, { seed: 7, credentials: ['openai'] })
const firstTag: string | undefined = plan.attempts[0]?.endpoint
const cost: CostBreakdown = router.cost('openai/gpt-4o-mini', { prompt_tokens: 10, completion_tokens: 5 }, null, { utcMinute: 60 })
const total: string = cost.total
const models: Model[] = router.models({ inputModality: 'image', supportedParameters: ['tools'], maxPromptPrice: '1.5' })
validateRequest(request)

async function main(): Promise<void> {
  const completion: ChatCompletion = await router.chat(request)
  const text: string | null = completion.choices[0].message.content
  const usd: number | undefined = completion.usage.cost
  for await (const chunk of router.stream({ ...request, stream: true })) {
    const c: ChatCompletionChunk = chunk
    const delta: string | null | undefined = c.choices[0]?.delta.content
  }
  const record: Generation | null = await router.generation(completion.id)
  const client = new OpenAI({ apiKey: 'unused', baseURL: 'http://polyroute.local/api/v1', fetch: router.fetch })
  const viaSdk = await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
  const sdkText: string | null = viaSdk.choices[0].message.content
  try {
    router.plan({ model: 'nope/missing', messages: [] })
  } catch (e) {
    if (isPolyrouteError(e)) {
      const err: PolyrouteError = e
      const code: `${ErrorCode}` = err.code
      const status: number = err.status
      const retry: boolean = err.retryable
      const envelope: number = err.body.error.code
      if (code === ErrorCode.ModelNotFound) console.log(status, retry, envelope, err.attempts.length)
    }
  }
  const codes: string[] = allCodes()
  // @ts-expect-error: `messages` is required
  router.plan({ model: 'x' })
  // @ts-expect-error: options are typed
  new Router({ readEnv: 'yes' })
  console.log(firstTag, total, models.length, text, usd, record, sdkText, codes)
}

void main

// Embeddings: typed request and answer.
const vectors: Promise<Embeddings> = router.embeddings({ model: 'openai/text-embedding-3-small', input: ['a', 'b'], dimensions: 8 })
void vectors.then((e) => e.data[0].embedding)
// @ts-expect-error encoding_format is float or base64
void router.embeddings({ model: 'openai/text-embedding-3-small', input: 'a', encoding_format: 'int8' })
