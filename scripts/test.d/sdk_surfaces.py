"""The Anthropic Messages and OpenAI Responses surfaces of `polyroute serve`, with the official Python SDKs
(`anthropic`, `openai`), against the loopback mock (run by serve.sh, which sets URL and KEY): non-streaming,
streaming, tools across two turns, structured output, `models` fallback past a failing provider, a stream cut
after content, errors, count_tokens."""
import json
import os

import anthropic
import openai

URL, KEY = os.environ["URL"], os.environ["KEY"]
msg = lambda t: [{"role": "user", "content": t}]
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
TOOLS_A = [{"name": "get_stock_price", "input_schema": {"type": "object", "properties": {"ticker": {"type": "string"}}}}]
TOOLS_O = [{"type": "function", "name": "get_stock_price",
            "parameters": {"type": "object", "properties": {"ticker": {"type": "string"}}}}]
FALLBACK = {"models": ["anthropic/claude-haiku-4.5", "openai/gpt-4o-mini"]}

a = anthropic.Anthropic(base_url=URL + "/api", api_key=KEY, max_retries=0)

raw = a.messages.with_raw_response.create(model="openai/gpt-4o-mini", max_tokens=64, messages=msg("hello anthropic"))
m = raw.parse()
assert m.content[0].text.endswith("hello anthropic") and m.stop_reason == "end_turn", m
assert raw.headers["x-generation-id"] == m.id and m.usage.output_tokens > 0

with a.messages.stream(model="openai/gpt-4o-mini", max_tokens=64, messages=msg("stream anthropic")) as s:
    text = "".join(s.text_stream)
    final = s.get_final_message()
assert text.endswith("stream anthropic"), text
assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0, final

t = a.messages.create(model="x-ai/grok-4.5", max_tokens=64, tools=TOOLS_A, messages=msg("AAPL?"))
uses = [b for b in t.content if b.type == "tool_use"]
assert t.stop_reason == "tool_use" and len(uses) == 2 and uses[1].name == "get_stock_price", t
turn2 = msg("AAPL?") + [
    {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in t.content]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": u.id, "content": "42"} for u in uses]
     + [{"type": "text", "text": "two turns"}]}]
r2 = a.messages.create(model="openai/gpt-4o-mini", max_tokens=64, tools=TOOLS_A, tool_choice={"type": "none"},
                       messages=turn2)
assert r2.content[0].text.endswith("two turns"), r2

so = a.messages.create(model="openai/gpt-4o-mini", max_tokens=64, messages=msg("json please"),
                       extra_body={"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}})
assert json.loads(so.content[0].text)["answer"].endswith("json please"), so

fb = a.messages.create(model="anthropic/claude-haiku-4.5", max_tokens=32, messages=msg("fallback"), extra_body=FALLBACK)
assert fb.model == "openai/gpt-4o-mini", fb.model

try:
    with a.messages.stream(model="mistralai/mistral-small-2603", max_tokens=64,
                           messages=msg("one two three four five")) as s:
        for _ in s:
            pass
    raise SystemExit("expected the cut stream to end with an error event")
except anthropic.APIError as e:
    assert "error" in str(e).lower(), e

try:
    a.messages.create(model="acme/not-a-model", max_tokens=8, messages=msg("x"))
    raise SystemExit("expected 400")
except anthropic.BadRequestError as e:
    assert e.status_code == 400 and e.body["error"]["type"] == "invalid_request_error", e.body

ct = a.messages.count_tokens(model="openai/gpt-4o-mini", messages=msg("count these few tokens please"))
assert 5 < ct.input_tokens < 40, ct

o = openai.OpenAI(base_url=URL + "/api/v1", api_key=KEY, max_retries=0)
r = o.responses.create(model="openai/gpt-4o-mini", input="hello responses", instructions="Be brief.")
assert r.output_text.endswith("hello responses") and r.status == "completed", r
assert r.usage.output_tokens > 0

events = list(o.responses.create(model="openai/gpt-4o-mini", input="stream responses", stream=True))
types = [e.type for e in events]
assert types[0] == "response.created" and types[-1] == "response.completed", types
assert "".join(e.delta for e in events if e.type == "response.output_text.delta").endswith("stream responses")
with o.responses.stream(model="openai/gpt-4o-mini", input="stream helper") as s:
    for _ in s:
        pass
    assert s.get_final_response().output_text.endswith("stream helper")

t = o.responses.create(model="x-ai/grok-4.5", input="AAPL?", tools=TOOLS_O)
calls = [i for i in t.output if i.type == "function_call"]
assert len(calls) == 2 and calls[1].name == "get_stock_price", t
r2 = o.responses.create(model="openai/gpt-4o-mini", tools=TOOLS_O, tool_choice="none", input=msg("AAPL?")
                        + [c.model_dump(exclude_none=True) for c in calls]
                        + [{"type": "function_call_output", "call_id": c.call_id, "output": "42"} for c in calls]
                        + msg("two turns"))
assert r2.output_text.endswith("two turns"), r2

so = o.responses.create(model="openai/gpt-4o-mini", input="json please",
                        text={"format": {"type": "json_schema", "name": "a", "schema": SCHEMA}})
assert json.loads(so.output_text)["answer"].endswith("json please"), so

fb = o.responses.create(model="anthropic/claude-haiku-4.5", input="fallback", extra_body=FALLBACK)
assert fb.model == "openai/gpt-4o-mini", fb.model

cut = [e.type for e in o.responses.create(model="mistralai/mistral-small-2603", input="one two three four",
                                          stream=True)]
assert "error" in cut and cut[-1] == "response.failed", cut

try:
    o.responses.create(model="openai/gpt-4o-mini", input="x", previous_response_id="resp_123")
    raise SystemExit("expected 400")
except openai.BadRequestError as e:
    assert "stateless" in str(e), e

print("python sdk surfaces: anthropic 8, openai responses 8 scenarios passed")
