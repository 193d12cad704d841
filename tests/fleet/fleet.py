"""The fleet test with every kind of process: 3 `polyroute serve` gateways, 2 Python processes and 1 Node process
(in-process routers configured with `state`), all sharing one throwaway Redis and one throwaway PostgreSQL, in
front of two loopback mock providers. 256 concurrent clients spread over the six processes:

1. a user with a USD limit: billed spend (the ledger's sum) never exceeds it, and the spend in Redis is exactly
   the ledger's sum once the settles land;
2. a user with an rpm limit (`limits.user_rpm`) and money to spare: exactly rpm requests are admitted within the
   minute, every other one is refused with 429;
3. conversations (a session id) keep their endpoint whichever process serves the next turn.

Gateways bill a key as its user (the key's id), the bindings' requests name the same user: every process counts
the same budget scope and the same rate window. Every process is started here and stopped by its PID.

    fleet.py   (env: POLYROUTE_BIN = the cargo profile dir with polyroute, polyroute-mock and
                examples/state_servers; FLEET_PYTHON = a Python with the polyroute wheel; FLEET_NODE = the node
                package dir with its built addon)
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

BIN = os.environ["POLYROUTE_BIN"]
PY = os.environ["FLEET_PYTHON"]
NODE_PKG = os.environ["FLEET_NODE"]
HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = "sk-test-fake"
CLIENTS = 256
RPM = 40
LIMIT = Decimal("0.0003")  # about five worst cases of one request

procs: list[subprocess.Popen] = []


def spawn(args: list[str], **kw) -> subprocess.Popen:
    p = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, **kw)
    procs.append(p)
    return p


def first_line(p: subprocess.Popen, what: str) -> str:
    line = p.stdout.readline().strip() if p.stdout else ""
    if not line:
        raise SystemExit(f"{what} did not start (exit {p.poll()})")
    return line


def catalog() -> dict:
    def endpoint(slug: str, price: str) -> dict:
        return {"provider": slug, "provider_name": f"{slug.upper()} Cloud", "tag": slug,
                "provider_model_id": f"{slug}-upstream", "context_length": 32768,
                "pricing": {"prompt": price, "completion": price},
                "supported_parameters": ["max_tokens", "temperature", "stream"]}
    provs = [{"slug": s, "name": f"{s.upper()} Cloud", "dialect": "openai", "base_url": "http://127.0.0.1:9/v1",
              "api_key_env": f"POLYROUTE_TEST_NEVER_SET_{s}"} for s in ("alpha", "beta")]
    model = {"id": "acme/chat", "name": "acme/chat", "created": 1_700_000_000, "context_length": 32768,
             "architecture": {"modality": "text->text", "input_modalities": ["text"],
                              "output_modalities": ["text"], "tokenizer": "Other"},
             "pricing": {"prompt": "0.000001", "completion": "0.000001"},
             "top_provider": {"context_length": 32768, "max_completion_tokens": 4096, "is_moderated": False},
             "supported_parameters": ["max_tokens", "temperature", "stream"],
             "endpoints": [endpoint("alpha", "0.000001"), endpoint("beta", "0.000001")]}
    return {"version": 1, "providers": provs, "models": [model]}


def chat(text: str) -> dict:
    return {"model": "acme/chat", "messages": [{"role": "user", "content": text}], "max_tokens": 50}


def post(url: str, body: dict, headers: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


class Target:
    def __init__(self, kind: str, url: str):
        self.kind, self.url = kind, url

    def send(self, key: str, user: str, text: str, session: str | None = None) -> tuple[int, dict]:
        if self.kind == "gateway":
            h = {"authorization": f"Bearer {key}"}
            if session:
                h["x-session-id"] = session
            return post(f"{self.url}/api/v1/chat/completions", chat(text), h)
        return post(f"{self.url}/chat", {"request": chat(text), "user": user, "session": session}, {})


def psql(url: str, sql: str) -> str:
    return subprocess.run(["psql", url, "-Atc", sql], check=True, capture_output=True, text=True).stdout.strip()


def ledger(pg: str, user: str) -> tuple[int, Decimal]:
    n, s = psql(pg, f"SELECT count(*), coalesce(sum(cost), 0)::text FROM polyroute_generations "
                    f"WHERE user_key = '{user}'").split("|")
    return int(n), Decimal(s)


def redis_spent(port: str, user: str) -> Decimal:
    out = subprocess.run(["redis-cli", "-p", port, "HGET", f"{{polyroute}}:b:user:{user}", "spent"],
                         check=True, capture_output=True, text=True).stdout.strip()
    return Decimal(int(out or 0)) / Decimal(10**12)


def burst(targets: list[Target], key: str, user: str, tag: str) -> list[int]:
    """CLIENTS concurrent clients, one request each, released together, spread over the targets."""
    gate = threading.Barrier(CLIENTS)

    def one(i: int) -> int:
        gate.wait(timeout=60)
        t = targets[i % len(targets)]
        s, v = t.send(key, user, f"{tag} {i}")
        if s not in (200, 402, 429):
            print(f"{t.kind} {t.url}: {s} {json.dumps(v)[:400]}", file=sys.stderr)
        return s

    with ThreadPoolExecutor(CLIENTS) as ex:
        return list(ex.map(one, range(CLIENTS)))


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="polyroute-fleet-")
    servers = spawn([f"{BIN}/examples/state_servers"], stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    redis_url = first_line(servers, "state servers").split(" ", 1)[1]
    pg_url = first_line(servers, "state servers").split(" ", 1)[1]
    rport = redis_url.rstrip("/").rsplit(":", 1)[1]
    mocks = [first_line(spawn([f"{BIN}/polyroute-mock", "--port", "0", "--label", m, "--keep-requests", "0"]),
                        "mock").rsplit(" ", 1)[1] for m in ("alpha", "beta")]
    mocks = [m if m.startswith("http") else f"http://{m}" for m in mocks]
    cat = os.path.join(tmp, "catalog.json")
    with open(cat, "w") as f:
        json.dump(catalog(), f)

    base = (f'catalog = "{cat}"\nenv_keys = false\n\n[server]\nkeepalive_ms = 1000\n\n[timeouts]\ntotal = 5000\n\n'
            f'[state]\nredis = "{redis_url}"\npostgres = "{pg_url}"\n\n'
            f'[providers.alpha]\napi_key = "{FAKE}"\nbase_url = "{mocks[0]}/v1"\n\n'
            f'[providers.beta]\napi_key = "{FAKE}"\nbase_url = "{mocks[1]}/v1"\n')
    base_cfg = os.path.join(tmp, "base.toml")
    with open(base_cfg, "w") as f:
        f.write(base)

    def keys(*args: str) -> str:
        return subprocess.run([f"{BIN}/polyroute", "keys", "--config", base_cfg, *args], check=True,
                              capture_output=True, text=True).stdout

    secret = {label: keys("create", "--label", label).strip().splitlines()[-1].strip()
              for label in ("usd", "rpm", "sticky")}
    ids = {k["label"]: k["id"] for k in json.loads(keys("list", "--json"))}
    limits = {"user_usd": {ids["usd"]: str(LIMIT)}, "user_rpm": RPM}
    cfg = os.path.join(tmp, "polyroute.toml")
    with open(cfg, "w") as f:
        f.write(base.replace("[state]", f'[limits]\nuser_rpm = {RPM}\n\n[limits.user_usd]\n'
                                        f'"{ids["usd"]}" = "{LIMIT}"\n\n[state]'))

    targets: list[Target] = []
    for i in range(3):
        p = spawn([f"{BIN}/polyroute", "serve", "--port", "0", "--config", cfg, "--data-dir",
                   os.path.join(tmp, f"gw{i}")], stderr=subprocess.DEVNULL)
        targets.append(Target("gateway", first_line(p, f"gateway {i}").split(" ", 2)[2]))
    providers = {s: {"api_key": FAKE, "base_url": f"{m}/v1"} for s, m in zip(("alpha", "beta"), mocks)}
    for i in range(2):
        conf = {"catalog": cat, "providers": providers, "read_env": False, "limits": limits,
                "timeouts": {"total_ms": 5000},
                "state": {"redis": redis_url, "postgres": pg_url, "spool": os.path.join(tmp, f"py{i}.spool")}}
        p = spawn([PY, os.path.join(HERE, "python_router.py"), json.dumps(conf)])
        targets.append(Target("python", f"http://127.0.0.1:{first_line(p, f'python {i}').split()[-1]}"))
    nconf = {"catalog": cat, "providers": {s: {"apiKey": v["api_key"], "baseUrl": v["base_url"]}
                                           for s, v in providers.items()},
             "readEnv": False, "limits": {"userUsd": limits["user_usd"], "userRpm": RPM},
             "timeouts": {"totalMs": 5000},
             "state": {"redis": redis_url, "postgres": pg_url, "spool": os.path.join(tmp, "node.spool")}}
    p = spawn(["node", os.path.join(HERE, "node_router.js"), NODE_PKG, json.dumps(nconf)])
    targets.append(Target("node", f"http://127.0.0.1:{first_line(p, 'node').split()[-1]}"))
    print(f"fleet: {', '.join(t.kind + ' ' + t.url for t in targets)}; redis :{rport}")

    # 1. The USD limit across the fleet.
    st = burst(targets, secret["usd"], ids["usd"], "usd")
    n = {s: st.count(s) for s in set(st)}
    assert set(n) <= {200, 402, 429}, n
    assert n.get(200, 0) > 0 and n.get(402, 0) > 0, n
    rows, billed = ledger(pg_url, ids["usd"])
    assert rows == n[200], (rows, n)
    assert billed <= LIMIT, f"billed {billed} over the limit {LIMIT}"
    t = time.monotonic()
    while redis_spent(rport, ids["usd"]) != billed:
        assert time.monotonic() - t < 10, f"spent {redis_spent(rport, ids['usd'])} in Redis, ledger {billed}"
        time.sleep(0.1)
    print(f"usd limit: {n} over {CLIENTS} clients; billed {billed} of {LIMIT}; Redis spend = ledger sum")

    # 2. The rpm across the fleet: exactly RPM admitted within the minute.
    st = burst(targets, secret["rpm"], ids["rpm"], "rpm")
    n = {s: st.count(s) for s in set(st)}
    assert n.get(200, 0) == RPM and n.get(429, 0) == CLIENTS - RPM, n
    rows, _ = ledger(pg_url, ids["rpm"])
    assert rows == RPM, rows
    by_kind = {k: sum(1 for i, s in enumerate(st) if s == 200 and targets[i % len(targets)].kind == k)
               for k in ("gateway", "python", "node")}
    print(f"rpm: {n} over {CLIENTS} clients (rpm {RPM}); admitted by gateway/python/node: {by_kind}")

    # 3. Conversations keep their endpoint from any process (6 conversations x 6 turns: within the rpm).
    for conv in range(6):
        seen = []
        for turn in range(6):
            s, v = targets[(conv + turn) % len(targets)].send(secret["sticky"], ids["sticky"], "hello",
                                                              session=f"conversation-{conv}")
            assert s == 200, (s, v)
            seen.append(v["provider"])
            time.sleep(0.02)
        assert len(set(seen)) == 1, f"conversation-{conv}: {seen}"
    print("sticky: 6 conversations kept their endpoint over 6 turns across gateway, Python and Node processes")
    print("fleet test passed")


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in reversed(procs):
            if p.stdin:
                p.stdin.close()  # state_servers stops its servers when stdin closes
            elif p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
