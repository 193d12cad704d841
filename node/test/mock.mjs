// Start and stop the loopback mock provider (crates/polyroute-mock) for tests and benchmarks, and a fixture
// catalog whose providers point at it. Loopback only; fake keys only; the process is stopped by its PID.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const FAKE_KEY = 'sk-test-fake-0123456789'

function mockBinary() {
  if (process.env.POLYROUTE_MOCK_BIN) return process.env.POLYROUTE_MOCK_BIN
  const target = process.env.CARGO_TARGET_DIR ?? join(root, 'target')
  for (const profile of ['release', 'debug']) {
    const p = join(target, profile, 'polyroute-mock')
    if (existsSync(p)) return p
  }
  throw new Error('polyroute-mock is not built: run `cargo build -p polyroute-mock` (or set POLYROUTE_MOCK_BIN)')
}

/** Spawn `polyroute-mock --port 0` and wait for its `listening on 127.0.0.1:<port>` line. */
export async function startMock(extraArgs = []) {
  const args = ['--port', '0', ...extraArgs]
  const wire = join(root, '..', 'shared', 'data', 'wire')
  if (existsSync(wire)) args.push('--wire-dir', wire)
  const child = spawn(mockBinary(), args, { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout })
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('polyroute-mock did not start within 10 s')), 10_000)
    child.once('exit', (code) => reject(new Error(`polyroute-mock exited with ${code}`)))
    lines.once('line', (line) => {
      clearTimeout(timer)
      resolve(line.replace(/^listening on /, '').trim())
    })
  })
  const url = `http://${addr}`
  return {
    url,
    pid: child.pid,
    async calls() {
      return (await fetch(`${url}/__mock/calls`)).json()
    },
    async reset() {
      await fetch(`${url}/__mock/reset`, { method: 'POST' })
    },
    stop() {
      lines.close()
      if (child.exitCode === null) process.kill(child.pid, 'SIGTERM')
    },
  }
}

function endpoint(slug, price) {
  return {
    provider: slug,
    provider_name: `${slug[0].toUpperCase()}${slug.slice(1)} Cloud`,
    tag: slug,
    provider_model_id: `${slug}-upstream-model`,
    context_length: 32768,
    pricing: { prompt: price, completion: price },
    supported_parameters: ['max_tokens', 'temperature', 'tools', 'tool_choice', 'response_format', 'structured_outputs', 'stream'],
  }
}

function model(id, providers, price = '0.000001') {
  return {
    id,
    name: id,
    created: 1_700_000_000,
    context_length: 32768,
    architecture: { modality: 'text->text', input_modalities: ['text'], output_modalities: ['text'], tokenizer: 'Other' },
    pricing: { prompt: price, completion: price },
    top_provider: { context_length: 32768, max_completion_tokens: 4096, is_moderated: false },
    supported_parameters: ['max_tokens', 'temperature', 'tools', 'tool_choice', 'response_format', 'structured_outputs', 'stream'],
    endpoints: providers.map((p) => endpoint(p, price)),
  }
}

/** Provider slug → extra headers sent to the mock (faults and replays chosen per provider). */
export const PROVIDERS = {
  alpha: {},
  beta: {},
  broken: { 'x-mock-fault': '503' },
  limited: { 'x-mock-fault': '429=1' },
  tooly: { 'x-mock-replay': 'openai/chat_completion.parallel_tool_calls.response.json' },
  schemy: { 'x-mock-replay': 'openai/chat_completion.json_schema.response.json' },
}

/** A catalog whose every provider is the mock, plus the router options with fake keys. */
export function fixture(mockUrl, overrides = {}) {
  const providers = Object.keys(PROVIDERS).map((slug) => ({
    slug,
    name: `${slug[0].toUpperCase()}${slug.slice(1)} Cloud`,
    dialect: 'openai',
    base_url: `${mockUrl}/v1`,
    api_key_env: `POLYROUTE_TEST_NEVER_SET_${slug.toUpperCase()}`,
  }))
  const catalog = {
    version: 1,
    providers,
    models: [
      model('test/chat', ['alpha', 'beta']),
      model('test/broken', ['broken']),
      model('test/limited', ['limited']),
      model('test/tools', ['tooly']),
      model('test/schema', ['schemy']),
    ],
  }
  return {
    catalog,
    readEnv: false,
    timeouts: { connectMs: 1000, firstTokenMs: 5000, idleMs: 5000, totalMs: 20_000 },
    providers: Object.fromEntries(Object.entries(PROVIDERS).map(([slug, headers]) => [slug, { apiKey: FAKE_KEY, headers }])),
    ...overrides,
  }
}
