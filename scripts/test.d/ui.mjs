// Driven by ui.sh: seeds the gateway with real requests, computes the expected totals from what it sent (tokens
// from each answer × the catalog's prices), then drives /ui in headless Chromium and compares the page with them.
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.NODE_DIR, "package.json"));
const { chromium } = require("playwright-core");

const BASE = process.env.URL;
const KEYS = { admin: process.env.ADMIN_KEY, "team-a": process.env.TEAM_A_KEY, "team-b": process.env.TEAM_B_KEY };
const SHOTS = process.env.SHOTS;
const XSS = '<img src=x id=injected onerror="document.title=1">';
// Prices in micro-USD per token (the catalog ui.sh writes): all costs are whole micro-dollars.
const PRICE = { "acme/chat": [1, 2], "acme/big": [10, 30] };

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log("ok - " + name);
  } catch (e) {
    failed++;
    console.log("FAIL - " + name + "\n" + (e && e.stack ? e.stack : e));
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
function eq(a, b, msg) {
  const ja = JSON.stringify(a);
  const jb = JSON.stringify(b);
  if (ja !== jb) throw new Error(msg + ": got " + ja + ", want " + jb);
}
const micro = (s) => Math.round(parseFloat(String(s).replace(/[$,]/g, "")) * 1e6);
const int = (s) => parseInt(String(s).replace(/,/g, ""), 10);

// ---- seed ------------------------------------------------------------------------------------------------------

const sent = []; // {key, app, model, provider, prompt, completion, micro}

async function chat(keyName, model, { title, referer, provider, stream } = {}) {
  const headers = { Authorization: "Bearer " + KEYS[keyName], "Content-Type": "application/json" };
  if (title !== undefined) headers["X-OpenRouter-Title"] = title;
  if (referer !== undefined) headers["HTTP-Referer"] = referer;
  const body = { model, messages: [{ role: "user", content: "hello from " + keyName + " " + sent.length }], max_tokens: 20 };
  if (provider) body.provider = provider;
  if (stream) body.stream = true;
  const r = await fetch(BASE + "/api/v1/chat/completions", { method: "POST", headers, body: JSON.stringify(body) });
  const text = await r.text();
  assert(r.status === 200, "seed request failed: " + r.status + " " + text);
  let usage;
  if (stream) {
    for (const line of text.split("\n")) {
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      const ev = JSON.parse(line.slice(6));
      if (ev.usage) usage = ev.usage;
    }
  } else {
    const v = JSON.parse(text);
    usage = v.usage;
  }
  assert(usage && usage.prompt_tokens > 0, "no usage in " + text.slice(0, 300));
  const gen = r.headers.get("x-generation-id");
  const g = await fetch(BASE + "/api/v1/generation?id=" + encodeURIComponent(gen), { headers: { Authorization: "Bearer " + KEYS[keyName] } });
  assert(g.status === 200, "generation " + gen + ": " + g.status);
  const served = (await g.json()).data.provider;
  const [pp, pc] = PRICE[model];
  sent.push({
    key: keyName,
    app: title || referer || "",
    model,
    provider: served,
    prompt: usage.prompt_tokens,
    completion: usage.completion_tokens,
    micro: usage.prompt_tokens * pp + usage.completion_tokens * pc,
  });
}

const ONLY_ALPHA = { only: ["alpha"] };
const GAMMA_FIRST = { order: ["gamma", "alpha"] };
for (let i = 0; i < 3; i++) await chat("team-a", "acme/chat", { title: "Alpha App", provider: ONLY_ALPHA });
await chat("team-a", "acme/chat", { title: "Alpha App", provider: ONLY_ALPHA, stream: true });
for (let i = 0; i < 2; i++) await chat("team-a", "acme/big", { referer: "https://beta-app.example" });
await chat("team-b", "acme/big", { title: "Alpha App" });
for (let i = 0; i < 2; i++) await chat("team-b", "acme/chat", { provider: GAMMA_FIRST });
await chat("team-b", "acme/chat", { title: XSS, provider: ONLY_ALPHA });
const FALLBACKS = 2;

function totalsBy(field, rows) {
  const m = new Map();
  for (const s of rows) {
    const k = s[field];
    const t = m.get(k) || { requests: 0, micro: 0, prompt: 0, completion: 0 };
    t.requests++;
    t.micro += s.micro;
    t.prompt += s.prompt;
    t.completion += s.completion;
    m.set(k, t);
  }
  return m;
}
const sum = (rows) => totalsBy("_", rows.map((r) => ({ ...r, _: "" }))).get("") || { requests: 0, micro: 0, prompt: 0, completion: 0 };
console.log("seeded " + sent.length + " generations");

// ---- a key is required (HTTP) ----------------------------------------------------------------------------------

await check("every dashboard endpoint refuses no key and a wrong key (401)", async () => {
  for (const p of ["session", "usage", "health", "generations", "plan?model=acme/chat"]) {
    const none = await fetch(BASE + "/api/v1/ui/" + p);
    eq(none.status, 401, p + " without a key");
    const wrong = await fetch(BASE + "/api/v1/ui/" + p, { headers: { Authorization: "Bearer sk-pr-v1-fake-not-a-key" } });
    eq(wrong.status, 401, p + " with a wrong key");
  }
});

await check("the page is served with a CSP and no inline script", async () => {
  const r = await fetch(BASE + "/ui");
  eq(r.status, 200, "GET /ui");
  const csp = r.headers.get("content-security-policy") || "";
  assert(csp.includes("script-src 'self'") && !csp.includes("unsafe-inline"), "CSP: " + csp);
  const html = await r.text();
  assert(!/<script(?![^>]*\bsrc=)[^>]*>/i.test(html), "an inline <script> in the page");
  assert(!/\son[a-z]+=/i.test(html), "an inline event handler in the page");
});

// ---- the browser -----------------------------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});

function watch(page) {
  const errors = [];
  const urls = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") errors.push(m.type() + ": " + m.text());
  });
  page.on("pageerror", (e) => errors.push("pageerror: " + e.message));
  page.on("request", (r) => urls.push(r.url()));
  return { errors, urls };
}

async function login(page, key) {
  await page.goto(BASE + "/ui");
  await page.waitForSelector("#login-form");
  await page.fill("#key", key);
  await page.click("#login-form button[type=submit]");
}

async function ready(page, section, extra = "") {
  await page.waitForSelector(`#${section}[data-state=ready]${extra}`, { timeout: 15000 });
}

async function usageTable(page) {
  return page.$$eval("#usage-table tbody tr", (trs) =>
    trs.map((tr) => ({
      group: tr.getAttribute("data-group"),
      name: tr.querySelector("td.name") ? tr.querySelector("td.name").textContent : "",
      requests: tr.querySelector("td.requests") ? tr.querySelector("td.requests").textContent : "",
      cost: tr.querySelector("td.cost") ? tr.querySelector("td.cost").textContent : "",
      prompt: tr.querySelector("td.prompt") ? tr.querySelector("td.prompt").textContent : "",
      completion: tr.querySelector("td.completion") ? tr.querySelector("td.completion").textContent : "",
    }))
  );
}

async function compareGroup(page, group, field, rows, labelOf = (k) => k) {
  await page.selectOption("#group", group);
  await ready(page, "usage", `[data-group=${group}]`);
  const got = await usageTable(page);
  const want = totalsBy(field, rows);
  eq(got.length, want.size, group + ": number of rows (" + JSON.stringify(got) + ")");
  for (const [k, t] of want) {
    const label = labelOf(k);
    const row = got.find((r) => (group === "key" ? r.name.startsWith(label + " (") : r.group === k));
    assert(row, group + ": no row for " + JSON.stringify(label) + " in " + JSON.stringify(got));
    eq(
      [int(row.requests), micro(row.cost), int(row.prompt), int(row.completion)],
      [t.requests, t.micro, t.prompt, t.completion],
      group + " " + label + ": requests, micro-USD, prompt, completion"
    );
  }
  const s = sum(rows);
  const totals = await page.$$eval(["#total-requests", "#total-cost", "#total-prompt", "#total-completion"].join(","), (es) =>
    es.map((e) => e.textContent)
  );
  eq([int(totals[0]), micro(totals[1]), int(totals[2]), int(totals[3])], [s.requests, s.micro, s.prompt, s.completion], group + ": totals");
  // The charts plot the same totals: the sum of every plotted point.
  const sums = await page.$$eval(".chart", (cs) => cs.map((c) => [c.id, c.dataset.sum, c.querySelector("canvas") ? c.querySelector("canvas").getBoundingClientRect().width : 0]));
  const byId = Object.fromEntries(sums.map(([id, v, w]) => [id, { v: Number(v), w }]));
  eq(byId["chart-requests"].v, s.requests, group + ": requests plotted");
  eq(Math.round(byId["chart-cost"].v * 1e6), s.micro, group + ": spend plotted");
  assert(byId["chart-requests"].w > 200 && byId["chart-cost"].w > 200, group + ": charts drawn: " + JSON.stringify(byId));
}

const admin = await browser.newPage({ viewport: { width: 1440, height: 900 } });
const adminWatch = watch(admin);

await check("management key: every group's table, totals and charts match what was sent", async () => {
  await login(admin, KEYS.admin);
  await ready(admin, "usage", "[data-group=model]");
  const who = await admin.textContent("#who");
  assert(who.includes("admin") && who.includes("all keys"), "who: " + who);
  await compareGroup(admin, "app", "app", sent);
  await compareGroup(admin, "provider", "provider", sent);
  await compareGroup(admin, "key", "key", sent);
  await compareGroup(admin, "model", "model", sent);
});

await check("data is rendered as text: an app title with markup shows as text", async () => {
  await admin.selectOption("#group", "app");
  await ready(admin, "usage", "[data-group=app]");
  const names = await admin.$$eval("#usage-table td.name", (tds) => tds.map((t) => t.textContent));
  assert(names.includes(XSS), "the title is shown verbatim: " + JSON.stringify(names));
  eq(await admin.$$eval("#injected", (e) => e.length), 0, "no element injected");
  assert((await admin.title()) !== "1", "no handler ran");
});

await check("recent generations: one row per generation, fallbacks with every attempt", async () => {
  await ready(admin, "generations");
  const rows = await admin.$$eval("#gen-table tbody tr", (trs) =>
    trs.map((tr) => ({
      attempts: Number(tr.getAttribute("data-attempts")),
      items: [...tr.querySelectorAll("ol.attempts li")].map((li) => ({ text: li.textContent, ok: li.className === "ok" })),
      cost: tr.querySelector("td.cost").textContent,
    }))
  );
  eq(rows.length, sent.length, "rows");
  eq(rows.reduce((a, r) => a + micro(r.cost), 0), sum(sent).micro, "summed spend of the rows (micro-USD)");
  const fb = rows.filter((r) => r.attempts >= 2);
  eq(fb.length, FALLBACKS, "generations that fell back");
  for (const r of fb) {
    eq(r.items.length, r.attempts, "one list item per attempt");
    assert(r.items[0].text.startsWith("gamma") && r.items[0].text.includes("503"), "first attempt: gamma, 503: " + r.items[0].text);
    const last = r.items[r.items.length - 1];
    assert(last.ok && last.text.startsWith("alpha"), "served by alpha: " + last.text);
  }
});

await check("provider health: uptime and samples from the attempts sent", async () => {
  await ready(admin, "health");
  const rows = await admin.$$eval("#health-table tbody tr", (trs) =>
    Object.fromEntries(trs.map((tr) => [tr.getAttribute("data-provider"), { uptime: tr.querySelector("td.uptime").textContent, samples: tr.querySelector("td.samples").textContent }]))
  );
  const chatCalls = sent.filter((s) => s.model === "acme/chat").length;
  const bigCalls = sent.filter((s) => s.model === "acme/big").length;
  eq(Object.keys(rows).sort(), ["alpha", "beta", "gamma"], "providers");
  eq([rows.alpha.uptime, int(rows.alpha.samples)], ["100.0%", chatCalls], "alpha (served every acme/chat)");
  eq([rows.beta.uptime, int(rows.beta.samples)], ["100.0%", bigCalls], "beta (served every acme/big)");
  assert(rows.gamma.uptime === "0.0%" && int(rows.gamma.samples) >= FALLBACKS, "gamma always failed: " + JSON.stringify(rows.gamma));
});

await check("plan: the endpoints a request would try, and an error for an unknown model", async () => {
  await admin.fill("#plan-model", "acme/big");
  await admin.click("#plan-form button[type=submit]");
  await ready(admin, "plan");
  eq(await admin.$$eval("#plan-out li[data-endpoint]", (l) => l.map((x) => x.getAttribute("data-endpoint"))), ["beta"], "acme/big");
  await admin.fill("#plan-model", "acme/chat");
  await admin.selectOption("#plan-sort", "price");
  await admin.click("#plan-form button[type=submit]");
  await admin.waitForFunction(() => document.querySelectorAll("#plan-out li[data-endpoint]").length >= 2);
  const eps = await admin.$$eval("#plan-out li[data-endpoint]", (l) => l.map((x) => x.getAttribute("data-endpoint")));
  eq([...eps].sort(), ["alpha", "gamma"], "acme/chat");
  const before = adminWatch.errors.length;
  await admin.fill("#plan-model", "acme/none");
  await admin.click("#plan-form button[type=submit]");
  await admin.waitForFunction(() => document.getElementById("plan-error").textContent.length > 0);
  const msg = await admin.textContent("#plan-error");
  assert(msg.includes("acme/none"), "the error names the model: " + msg);
  // The browser reports the refused request (400) on the console: that one message is expected.
  const added = adminWatch.errors.splice(before);
  assert(added.length === 1 && /status of 400/.test(added[0]), "console after the unknown model: " + JSON.stringify(added));
});

await check("desktop screenshot, no horizontal overflow", async () => {
  await admin.selectOption("#group", "model");
  await ready(admin, "usage", "[data-group=model]");
  await admin.fill("#plan-model", "acme/chat");
  await admin.click("#plan-form button[type=submit]");
  await admin.waitForFunction(() => document.querySelectorAll("#plan-out li[data-endpoint]").length >= 2);
  await admin.$$eval("#gen-table details", (ds) => ds.slice(0, 3).forEach((d) => (d.open = true)));
  const over = await admin.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(over <= 0, "page wider than the window by " + over + "px");
  await admin.screenshot({ path: path.join(SHOTS, "dashboard-desktop.png"), fullPage: true });
});

await check("the key is typed once: a reload keeps the tab's key; it is never in a URL", async () => {
  await admin.reload();
  await ready(admin, "usage");
  assert(await admin.isHidden("#login"), "login shown again after a reload");
  for (const k of Object.values(KEYS)) assert(!adminWatch.urls.some((u) => u.includes(k)), "a key in a request URL");
  await admin.click("#forget");
  assert(await admin.isVisible("#login"), "forget shows the login");
  eq(await admin.evaluate(() => sessionStorage.length), 0, "forget clears the tab's storage");
});

await check("the management session logged no console error or warning", async () => {
  eq(adminWatch.errors, [], "console");
});

await check("a wrong key is refused in the page", async () => {
  const page = await browser.newPage();
  const w = watch(page);
  await login(page, "sk-pr-v1-fake-wrong-key");
  await page.waitForFunction(() => document.getElementById("login-error").textContent.length > 0);
  assert(await page.isHidden("#dash"), "dashboard shown for a wrong key");
  const text = await page.textContent("#login-error");
  assert(/refused/i.test(text), "message: " + text);
  // The only console output is the browser's own report of the refused request.
  const other = w.errors.filter((e) => !/status of 401/.test(e));
  eq(other, [], "console");
  await page.close();
});

await check("an inference key sees only its own usage and generations (phone width)", async () => {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const page = await ctx.newPage();
  const w = watch(page);
  await login(page, KEYS["team-a"]);
  await ready(page, "usage", "[data-group=model]");
  const mine = sent.filter((s) => s.key === "team-a");
  await compareGroup(page, "app", "app", mine);
  await compareGroup(page, "model", "model", mine);
  await ready(page, "generations");
  eq(await page.$$eval("#gen-table tbody tr", (t) => t.length), mine.length, "own generations only");
  eq(await page.$$eval('#group option[value="key"]', (o) => o[0].hidden), true, "no grouping by key");
  const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(over <= 0, "page wider than the phone by " + over + "px");
  await page.screenshot({ path: path.join(SHOTS, "dashboard-phone.png"), fullPage: true });
  eq(w.errors, [], "console");
  await ctx.close();
});

await browser.close();
console.log(passed + " passed, " + failed + " failed");
process.exit(failed ? 1 : 0);
