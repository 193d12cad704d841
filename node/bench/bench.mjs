// Benchmarks of the Node binding (a program, not a test). Loopback only; every process started here is stopped by
// its PID before exit.
//
//   node bench/bench.mjs [--n 2000] [--plan-n 20000] [--sdk-n 1000] [--portkey-dir DIR]
//
// 1. router.plan through Node: median and p90 per call (fixture catalog, and the 17-endpoint
//    meta-llama/llama-3.3-70b-instruct of the embedded catalog with every one of its providers configured).
// 2. The openai npm SDK through `router.fetch` next to the same SDK calling the mock directly (its own fetch), JSON
//    and streamed, interleaved in rounds: added µs per call, and added µs per streamed chunk (the slope between an
//    8-piece and a 64-piece stream, polyroute's minus the direct one's); `router.stream` per chunk likewise.
// 3. router.chat against the loopback mock, next to the same request sent straight to the mock from Node
//    (node:http, keep-alive): the difference of medians is polyroute's added overhead.
// 4. With --portkey-dir (a directory where @portkey-ai/gateway is installed): the same request through the
//    Portkey gateway bound to 127.0.0.1, its added overhead, and the ratio of the two overheads.
import http from 'node:http'
import net from 'node:net'
import { spawn } from 'node:child_process'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Router } from 'polyroute'
import OpenAI from 'openai'
import { startMock, fixture, FAKE_KEY } from '../support/mock.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}
const N = Number(arg('n', 2000))
const PLAN_N = Number(arg('plan-n', 20000))
const SDK_N = Number(arg('sdk-n', 1000))
const PORTKEY_DIR = arg('portkey-dir', null)

const children = []
function stopAll() {
  for (const c of children) c.stop()
}
process.on('exit', stopAll)
process.on('SIGINT', () => process.exit(130))

function stats(samples) {
  const v = Float64Array.from(samples).sort()
  const q = (p) => v[Math.min(v.length - 1, Math.round((v.length - 1) * p))]
  return { n: v.length, median: q(0.5), p90: q(0.9), p99: q(0.99) }
}
const us = (x) => `${x.toFixed(2)} µs`
const line = (label, s) => console.log(`${label.padEnd(46)} median ${us(s.median).padStart(11)}  p90 ${us(s.p90).padStart(11)}  p99 ${us(s.p99).padStart(11)}  (n=${s.n})`)

function timeSync(fn, n) {
  for (let i = 0; i < Math.min(n, 2000); i++) fn()
  const out = new Array(n)
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint()
    fn()
    out[i] = Number(process.hrtime.bigint() - t) / 1000
  }
  return stats(out)
}

async function timeAsync(fn, n) {
  const out = new Array(n)
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint()
    await fn()
    out[i] = Number(process.hrtime.bigint() - t) / 1000
  }
  return out
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
function post(url, body, headers) {
  const payload = JSON.stringify(body)
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers } }, (res) => {
      const parts = []
      res.on('data', (d) => parts.push(d))
      res.on('end', () => {
        const text = Buffer.concat(parts).toString()
        if (res.statusCode !== 200) reject(new Error(`${url}: ${res.statusCode} ${text.slice(0, 300)}`))
        else resolve(JSON.parse(text))
      })
    })
    req.on('error', reject)
    req.end(payload)
  })
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

async function startPortkey(dir) {
  const port = await freePort()
  const entry = join(dir, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js')
  const child = spawn(process.execPath, ['--import', join(here, 'bind-loopback.mjs'), entry, `--port=${port}`, '--headless'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, NODE_ENV: 'production', TRUSTED_CUSTOM_HOSTS: '127.0.0.1,localhost' },
  })
  const handle = { url: `http://127.0.0.1:${port}`, pid: child.pid, stop: () => { if (child.exitCode === null && !child.killed) child.kill('SIGTERM') } }
  children.push(handle)
  for (let i = 0; i < 100; i++) {
    try {
      await new Promise((resolve, reject) => net.connect(port, '127.0.0.1').once('connect', function () { this.end(); resolve() }).once('error', reject))
      return handle
    } catch {
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  throw new Error('Portkey gateway did not start')
}

const BIG_MODEL = 'meta-llama/llama-3.3-70b-instruct'

async function drain(stream) {
  let n = 0
  for await (const _ of stream) n++
  return n
}

/** Interleaved rounds of every run; the medians per run and the chunk count each run returned. */
async function interleaved(runs, n) {
  const counts = {}
  for (const [k, f] of Object.entries(runs)) {
    for (let i = 0; i < 50; i++) counts[k] = await f()
  }
  const samples = Object.fromEntries(Object.keys(runs).map((k) => [k, []]))
  const cpu = Object.fromEntries(Object.keys(runs).map((k) => [k, 0]))
  const rounds = 10
  for (let r = 0; r < rounds; r++) {
    for (const [k, f] of Object.entries(runs)) {
      const c = process.cpuUsage()
      samples[k].push(...(await timeAsync(f, Math.ceil(n / rounds))))
      const d = process.cpuUsage(c)
      cpu[k] += d.user + d.system
    }
  }
  const s = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, { ...stats(v), cpu: cpu[k] / v.length }]))
  return { s, counts }
}

/** The openai SDK through `router.fetch` against the same SDK calling the mock directly, JSON and streamed. */
async function sdkSection(mock, router, messages) {
  const mocks = {}
  for (const n of [8, 64]) {
    mocks[n] = await startMock(['--keep-requests', '0', '--chunks', String(n)])
    children.push(mocks[n])
  }
  const opts = { apiKey: FAKE_KEY, maxRetries: 0 }
  const direct = (url) => new OpenAI({ ...opts, baseURL: `${url}/v1` })
  const inproc = (r) => new OpenAI({ ...opts, baseURL: 'http://polyroute.local/api/v1', fetch: r.fetch })
  const routers = { 8: new Router(fixture(mocks[8].url)), 64: new Router(fixture(mocks[64].url)) }
  const dreq = { model: 'alpha-upstream-model', messages, max_tokens: 64 }
  const preq = { model: 'test/chat', messages, max_tokens: 64, provider: { order: ['alpha'] } }
  const streamed = (req) => ({ ...req, stream: true, stream_options: { include_usage: true } })
  const d = direct(mock.url)
  const p = inproc(router)
  const runs = {
    'sdk JSON, direct to mock': () => d.chat.completions.create(dreq),
    'sdk JSON, router.fetch': () => p.chat.completions.create(preq),
  }
  for (const n of [8, 64]) {
    const dn = direct(mocks[n].url)
    const pn = inproc(routers[n])
    runs[`sdk stream ${n} pieces, direct to mock`] = async () => drain(await dn.chat.completions.create(streamed(dreq)))
    runs[`sdk stream ${n} pieces, router.fetch`] = async () => drain(await pn.chat.completions.create(streamed(preq)))
    runs[`router.stream ${n} pieces (objects)`] = () => drain(routers[n].stream(preq))
  }
  console.log('\n== openai SDK: direct to the mock vs through router.fetch (interleaved rounds)')
  const { s, counts } = await interleaved(runs, SDK_N)
  for (const [k, v] of Object.entries(s)) {
    line(`${k}${typeof counts[k] === 'number' ? ` [${counts[k]} chunks]` : ''}`, v)
    console.log(`${''.padEnd(46)} CPU of this process per call ${us(v.cpu).padStart(11)}`)
  }
  const m = (k) => s[k].median
  const c = (k) => s[k].cpu
  const fetchOver = m('sdk JSON, router.fetch') - m('sdk JSON, direct to mock')
  const chunks = counts['sdk stream 64 pieces, router.fetch'] - counts['sdk stream 8 pieces, router.fetch']
  const slope = (a, b) => (m(b) - m(a)) / chunks
  const directSlope = slope('sdk stream 8 pieces, direct to mock', 'sdk stream 64 pieces, direct to mock')
  const fetchSlope = slope('sdk stream 8 pieces, router.fetch', 'sdk stream 64 pieces, router.fetch')
  const objSlope = slope('router.stream 8 pieces (objects)', 'router.stream 64 pieces (objects)')
  const stream8Over = m('sdk stream 8 pieces, router.fetch') - m('sdk stream 8 pieces, direct to mock')
  console.log(`router.fetch added per JSON call (median − median):      ${us(fetchOver)}`)
  console.log(`router.fetch added per ${counts['sdk stream 8 pieces, router.fetch']}-chunk stream (median − median): ${us(stream8Over)}`)
  console.log(`per streamed chunk: direct ${us(directSlope)}, router.fetch ${us(fetchSlope)} (added ${us(fetchSlope - directSlope)}), router.stream ${us(objSlope)}`)
  // CPU of this process (all its threads: the JS thread and the addon's runtime) per call: steadier than wall time
  // on a loaded machine. The direct runs' share of the work done in the mock process is not counted on either side.
  const cpuSlope = (a, b) => (c(b) - c(a)) / chunks
  const cpuFetchOver = c('sdk JSON, router.fetch') - c('sdk JSON, direct to mock')
  const cpuChunkFetch = cpuSlope('sdk stream 8 pieces, router.fetch', 'sdk stream 64 pieces, router.fetch')
  const cpuChunkDirect = cpuSlope('sdk stream 8 pieces, direct to mock', 'sdk stream 64 pieces, direct to mock')
  const cpuChunkObj = cpuSlope('router.stream 8 pieces (objects)', 'router.stream 64 pieces (objects)')
  console.log(`CPU: router.fetch added per JSON call ${us(cpuFetchOver)}; per chunk: direct ${us(cpuChunkDirect)}, router.fetch ${us(cpuChunkFetch)} (added ${us(cpuChunkFetch - cpuChunkDirect)}), router.stream ${us(cpuChunkObj)}`)
  return {
    fetch_over_direct_us: fetchOver,
    stream8_over_direct_us: stream8Over,
    chunk_direct_us: directSlope,
    chunk_fetch_us: fetchSlope,
    chunk_fetch_added_us: fetchSlope - directSlope,
    chunk_router_stream_us: objSlope,
    cpu_fetch_over_direct_us: cpuFetchOver,
    cpu_chunk_fetch_added_us: cpuChunkFetch - cpuChunkDirect,
    cpu_chunk_router_stream_us: cpuChunkObj,
  }
}

async function main() {
  console.log(`node ${process.version}, ${process.platform}-${process.arch}`)

  const mock = await startMock(['--keep-requests', '0'])
  children.push(mock)
  console.log(`mock at ${mock.url} (pid ${mock.pid})`)
  const router = new Router(fixture(mock.url))
  const messages = [{ role: 'user', content: 'Say hello to the benchmark.' }]
  const req = { model: 'test/chat', messages, max_tokens: 64, provider: { order: ['alpha'] } }

  console.log('\n== router.plan through Node')
  const planFixture = timeSync(() => router.plan(req, {}), PLAN_N)
  line('plan, fixture model (2 endpoints), core inputs', planFixture)
  line('plan, fixture model, router credentials+health', timeSync(() => router.plan(req), PLAN_N))
  const embedded = new Router({ readEnv: false })
  const big = embedded.models().find((m) => m.id === BIG_MODEL)
  let planBig
  if (big) {
    // Every provider of the model configured (a fake key and a host), as an application serving it would have.
    const providers = Object.fromEntries(big.endpoints.map((e) => [e.provider, { apiKey: FAKE_KEY, baseUrl: 'http://127.0.0.1:9/v1' }]))
    const configured = new Router({ readEnv: false, providers })
    const bigReq = { model: big.id, messages, max_tokens: 64 }
    const p = configured.plan(bigReq)
    planBig = timeSync(() => configured.plan(bigReq), PLAN_N)
    line(`plan, ${big.endpoints.length} endpoints (${p.attempts.length} attempts)`, planBig)
    line(`plan, same, core inputs`, timeSync(() => configured.plan(bigReq, {}), PLAN_N))
  }

  const sdk = await sdkSection(mock, router, messages)

  console.log('\n== router.chat added overhead (sequential, loopback mock)')
  const direct = { model: 'alpha-upstream-model', messages, max_tokens: 64 }
  const directUrl = `${mock.url}/v1/chat/completions`
  const auth = { authorization: `Bearer ${FAKE_KEY}` }
  const runs = {
    direct: () => post(directUrl, direct, auth),
    polyroute: () => router.chat(req),
  }
  let portkey
  if (PORTKEY_DIR) {
    portkey = await startPortkey(PORTKEY_DIR)
    console.log(`Portkey gateway at ${portkey.url} (pid ${portkey.pid})`)
    const pkHeaders = { ...auth, 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${mock.url}/v1` }
    runs.portkey = () => post(`${portkey.url}/v1/chat/completions`, direct, pkHeaders)
  }
  for (const f of Object.values(runs)) await timeAsync(f, 300)
  const samples = Object.fromEntries(Object.keys(runs).map((k) => [k, []]))
  const rounds = 10
  for (let r = 0; r < rounds; r++) {
    for (const [k, f] of Object.entries(runs)) samples[k].push(...(await timeAsync(f, Math.ceil(N / rounds))))
  }
  const s = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, stats(v)]))
  line('direct to mock (node:http keep-alive)', s.direct)
  line('router.chat (polyroute in-process)', s.polyroute)
  const overhead = s.polyroute.median - s.direct.median
  console.log(`polyroute added overhead (median − median): ${us(overhead)}`)
  const result = { plan_median_us: planFixture.median, plan_17_us: planBig?.median, ...sdk, chat_overhead_us: overhead, direct_median_us: s.direct.median, polyroute_median_us: s.polyroute.median }
  if (s.portkey) {
    line('Portkey gateway (HTTP, 127.0.0.1)', s.portkey)
    const pk = s.portkey.median - s.direct.median
    console.log(`Portkey added overhead (median − median):   ${us(pk)}`)
    console.log(`ratio Portkey overhead / polyroute overhead:  ${(pk / overhead).toFixed(1)}×`)
    Object.assign(result, { portkey_median_us: s.portkey.median, portkey_overhead_us: pk, ratio: pk / overhead })
  }
  console.log(JSON.stringify(result))
}

try {
  await main()
} finally {
  stopAll()
  agent.destroy()
}
