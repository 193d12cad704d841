// Instruction counts of the in-process paths (a program for `scripts/bench-node --icount`, not a test): every
// mode is set up and warmed, then one MODE runs N times. Run under `valgrind --tool=cachegrind` with N = 0 and
// N > 0; the difference over N is the instructions one call costs in this process (the JavaScript thread and
// the addon's threads; the mock's work is not counted), steady whatever else loads the machine.
//
//   node bench/icount.mjs MODE N      MODE: plan17 directJSON fetchJSON direct8 direct64 fetch8 fetch64 rs8 rs64
//                                           cannedJSON canned8 canned64
import { Router } from 'polyroute'
import OpenAI from 'openai'
import { startMock, fixture, FAKE_KEY } from '../support/mock.mjs'

const [mode, nStr] = process.argv.slice(2)
const mocks = { 1: await startMock(['--keep-requests', '0']), 8: await startMock(['--keep-requests', '0', '--chunks', '8']), 64: await startMock(['--keep-requests', '0', '--chunks', '64']) }
try {
  const messages = [{ role: 'user', content: 'Say hello to the benchmark.' }]
  const dreq = { model: 'alpha-upstream-model', messages, max_tokens: 64 }
  const preq = { model: 'test/chat', messages, max_tokens: 64, provider: { order: ['alpha'] } }
  const streamed = (req) => ({ ...req, stream: true, stream_options: { include_usage: true } })
  const opts = { apiKey: FAKE_KEY, maxRetries: 0 }
  const drain = async (s) => { let n = 0; for await (const _ of s) n++; return n }
  const routers = {}, direct = {}, inproc = {}
  for (const k of [1, 8, 64]) {
    routers[k] = new Router(fixture(mocks[k].url))
    direct[k] = new OpenAI({ ...opts, baseURL: `${mocks[k].url}/v1` })
    inproc[k] = new OpenAI({ ...opts, baseURL: 'http://polyroute.local/api/v1', fetch: routers[k].fetch })
  }
  // The SDK's own cost, with no transport: a fetch that answers each call with a Response of bytes captured once
  // from the mock (the whole body in one piece). A router.fetch figure minus its canned one is what the in-process
  // transport costs (engine, upstream I/O, addon and fetch.cjs), which the direct figures (undici's fetch to the
  // mock, itself more than router.fetch) do not show.
  const captured = {}
  for (const k of [1, 8, 64]) {
    const body = JSON.stringify(k === 1 ? dreq : streamed(dreq))
    const r = await fetch(`${mocks[k].url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${FAKE_KEY}` }, body })
    captured[k] = { bytes: new Uint8Array(await r.arrayBuffer()), headers: [...r.headers] }
  }
  const canned = {}
  for (const k of [1, 8, 64]) {
    const cannedFetch = async () => new Response(captured[k].bytes, { status: 200, headers: captured[k].headers })
    canned[k] = new OpenAI({ ...opts, baseURL: 'http://canned.local/v1', fetch: cannedFetch })
  }
  const modes = {
    cannedJSON: () => canned[1].chat.completions.create(dreq),
    canned8: async () => drain(await canned[8].chat.completions.create(streamed(dreq))),
    canned64: async () => drain(await canned[64].chat.completions.create(streamed(dreq))),
    directJSON: () => direct[1].chat.completions.create(dreq),
    fetchJSON: () => inproc[1].chat.completions.create(preq),
    direct8: async () => drain(await direct[8].chat.completions.create(streamed(dreq))),
    direct64: async () => drain(await direct[64].chat.completions.create(streamed(dreq))),
    fetch8: async () => drain(await inproc[8].chat.completions.create(streamed(preq))),
    fetch64: async () => drain(await inproc[64].chat.completions.create(streamed(preq))),
    rs8: () => drain(routers[8].stream(preq)),
    rs64: () => drain(routers[64].stream(preq)),
  }
  // The 17-endpoint request of bench.mjs, every provider of the model configured.
  const embedded = new Router({ readEnv: false })
  const big = embedded.models().find((m) => m.id === 'meta-llama/llama-3.3-70b-instruct')
  const providers = Object.fromEntries(big.endpoints.map((e) => [e.provider, { apiKey: FAKE_KEY, baseUrl: 'http://127.0.0.1:9/v1' }]))
  const configured = new Router({ readEnv: false, providers })
  const bigReq = { model: big.id, messages, max_tokens: 64 }
  modes.plan17 = () => configured.plan(bigReq)
  if (!(mode in modes)) throw new Error(`unknown mode ${mode}`)
  for (const f of Object.values(modes)) for (let i = 0; i < 20; i++) await f()
  for (let i = 0; i < 500; i++) modes.plan17()
  const N = Number(nStr)
  const f = modes[mode]
  for (let i = 0; i < N; i++) await f()
} finally {
  for (const m of Object.values(mocks)) m.stop()
}
