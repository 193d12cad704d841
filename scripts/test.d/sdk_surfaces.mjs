// The Anthropic Messages and OpenAI Responses surfaces of `polyroute serve` with the official npm SDKs
// (@anthropic-ai/sdk, openai), run by serve.sh against the loopback mock (URL and KEY from the environment).
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const { URL: url, KEY: apiKey } = process.env;
const msg = (t) => [{ role: "user", content: t }];
const schema = { type: "object", properties: { answer: { type: "string" } }, required: ["answer"] };
const fallback = { models: ["anthropic/claude-haiku-4.5", "openai/gpt-4o-mini"] };

const a = new Anthropic({ baseURL: url + "/api", apiKey, maxRetries: 0 });
const m = await a.messages.create({ model: "openai/gpt-4o-mini", max_tokens: 64, messages: msg("hello node") });
assert.ok(m.content[0].text.endsWith("hello node"));
assert.equal(m.stop_reason, "end_turn");

const s = a.messages.stream({ model: "openai/gpt-4o-mini", max_tokens: 64, messages: msg("stream node") });
let text = "";
s.on("text", (t) => (text += t));
const final = await s.finalMessage();
assert.ok(text.endsWith("stream node"), text);
assert.ok(final.usage.output_tokens > 0);

const tools = [{ name: "get_stock_price", input_schema: { type: "object", properties: { ticker: { type: "string" } } } }];
const t = await a.messages.create({ model: "x-ai/grok-4.5", max_tokens: 64, tools, messages: msg("AAPL?") });
const uses = t.content.filter((b) => b.type === "tool_use");
assert.equal(t.stop_reason, "tool_use");
assert.equal(uses.length, 2);
const r2 = await a.messages.create({ model: "openai/gpt-4o-mini", max_tokens: 64, tools, tool_choice: { type: "none" },
  messages: [...msg("AAPL?"), { role: "assistant", content: t.content },
    { role: "user", content: [...uses.map((u) => ({ type: "tool_result", tool_use_id: u.id, content: "42" })),
      { type: "text", text: "two turns" }] }] });
assert.ok(r2.content[0].text.endsWith("two turns"));

const so = await a.messages.create({ model: "openai/gpt-4o-mini", max_tokens: 64, messages: msg("json please"),
  output_config: { format: { type: "json_schema", schema } } });
assert.ok(JSON.parse(so.content[0].text).answer.endsWith("json please"));

const fb = await a.messages.create({ model: "anthropic/claude-haiku-4.5", max_tokens: 32, messages: msg("fallback"), ...fallback });
assert.equal(fb.model, "openai/gpt-4o-mini");

await assert.rejects(
  (async () => { for await (const _ of await a.messages.create({ model: "mistralai/mistral-small-2603", max_tokens: 64,
    messages: msg("one two three four"), stream: true })) {} })(),
  (e) => e instanceof Anthropic.APIError);
await assert.rejects(a.messages.create({ model: "acme/not-a-model", max_tokens: 8, messages: msg("x") }),
  (e) => e instanceof Anthropic.BadRequestError && e.status === 400);

const o = new OpenAI({ baseURL: url + "/api/v1", apiKey, maxRetries: 0 });
const r = await o.responses.create({ model: "openai/gpt-4o-mini", input: "hello responses" });
assert.ok(r.output_text.endsWith("hello responses"));
const types = [];
let deltas = "";
for await (const e of await o.responses.create({ model: "openai/gpt-4o-mini", input: "stream responses", stream: true })) {
  types.push(e.type);
  if (e.type === "response.output_text.delta") deltas += e.delta;
}
assert.equal(types[0], "response.created");
assert.equal(types.at(-1), "response.completed");
assert.ok(deltas.endsWith("stream responses"));
const oTools = [{ type: "function", name: "get_stock_price", parameters: { type: "object", properties: { ticker: { type: "string" } } } }];
const tc = await o.responses.create({ model: "x-ai/grok-4.5", input: "AAPL?", tools: oTools });
const calls = tc.output.filter((i) => i.type === "function_call");
assert.equal(calls.length, 2);
const o2 = await o.responses.create({ model: "openai/gpt-4o-mini", tools: oTools, tool_choice: "none",
  input: [...msg("AAPL?"), ...calls, ...calls.map((c) => ({ type: "function_call_output", call_id: c.call_id, output: "42" })),
    ...msg("two turns")] });
assert.ok(o2.output_text.endsWith("two turns"));
const oso = await o.responses.create({ model: "openai/gpt-4o-mini", input: "json please",
  text: { format: { type: "json_schema", name: "a", schema } } });
assert.ok(JSON.parse(oso.output_text).answer.endsWith("json please"));
const ofb = await o.responses.create({ model: "anthropic/claude-haiku-4.5", input: "fallback", ...fallback });
assert.equal(ofb.model, "openai/gpt-4o-mini");
const cut = [];
for await (const e of await o.responses.create({ model: "mistralai/mistral-small-2603", input: "one two three", stream: true })) cut.push(e.type);
assert.ok(cut.includes("error") && cut.at(-1) === "response.failed", cut.join());
await assert.rejects(o.responses.create({ model: "openai/gpt-4o-mini", input: "x", previous_response_id: "resp_1" }),
  (e) => e instanceof OpenAI.BadRequestError && /stateless/.test(e.message));

console.log("node sdk surfaces: anthropic 7, openai responses 7 scenarios passed");
