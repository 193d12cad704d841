// Per streamed chunk, side by side: the openai SDK through `router.fetch` against the same SDK calling the mock
// directly, and `router.stream`, each the slope between an 8-piece and a 64-piece stream (median − median over 56
// chunks), with the package at PKGDIR (a node/ directory with its addon built and its node_modules installed).
// `scripts/bench-node --against DIR` runs it for an older tree's package and this one in turn, in rounds.
//
//   node bench/chunks.mjs PKGDIR [RUNS]
import { createRequire } from 'node:module'

const dir = process.argv[2]
if (!dir) throw new Error('usage: node bench/chunks.mjs PKGDIR [RUNS]')
const runsPerCase = Number(process.argv[3] ?? 300)
const require = createRequire(`${dir}/package.json`)
const OpenAI = require('openai').default ?? require('openai')
const { Router } = require(`${dir}/polyroute.cjs`)
const { startMock, fixture, FAKE_KEY } = await import(`${dir}/support/mock.mjs`)

const mocks = {}
for (const n of [8, 64]) mocks[n] = await startMock(['--keep-requests', '0', '--chunks', String(n)])
try {
  const messages = [{ role: 'user', content: 'hi there' }]
  const req = { model: 'test/chat', messages, max_tokens: 64, provider: { order: ['alpha'] }, stream: true, stream_options: { include_usage: true } }
  const { provider: _, ...direct } = { ...req, model: 'alpha-upstream-model' }
  const drain = async (s) => {
    let k = 0
    for await (const _chunk of s) k++
    return k
  }
  const cases = {}
  for (const n of [8, 64]) {
    const router = new Router(fixture(mocks[n].url))
    const viaFetch = new OpenAI({ apiKey: FAKE_KEY, maxRetries: 0, baseURL: 'http://polyroute.local/api/v1', fetch: router.fetch })
    const toMock = new OpenAI({ apiKey: FAKE_KEY, maxRetries: 0, baseURL: `${mocks[n].url}/v1` })
    cases[`fetch${n}`] = () => viaFetch.chat.completions.create(req).then(drain)
    cases[`direct${n}`] = () => toMock.chat.completions.create(direct).then(drain)
    cases[`stream${n}`] = () => drain(router.stream(req))
  }
  for (const f of Object.values(cases)) for (let i = 0; i < 100; i++) await f()
  const samples = Object.fromEntries(Object.keys(cases).map((k) => [k, []]))
  for (let r = 0; r < runsPerCase; r++) {
    for (const [k, f] of Object.entries(cases)) {
      const t = process.hrtime.bigint()
      await f()
      samples[k].push(Number(process.hrtime.bigint() - t) / 1000)
    }
  }
  const median = (v) => v.sort((a, b) => a - b)[v.length >> 1]
  const m = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]))
  const slope = (k) => (m[`${k}64`] - m[`${k}8`]) / 56
  const us = (x) => `${x.toFixed(2)} µs`
  console.log(
    `${dir}: per chunk: direct ${us(slope('direct'))}, router.fetch ${us(slope('fetch'))} (added ${us(slope('fetch') - slope('direct'))}), router.stream ${us(slope('stream'))}`,
  )
} finally {
  for (const mock of Object.values(mocks)) mock.stop()
}
