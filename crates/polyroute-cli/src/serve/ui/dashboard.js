// polyroute dashboard. Reads /api/v1/ui/* with the key typed into the page (kept in this tab's sessionStorage,
// sent only in the Authorization header). Every value from the server is inserted as text (textContent or text
// nodes), never as HTML.
"use strict";

(function () {
  const STORE = "polyroute.dashboard.key";
  const COLORS = ["#2f6fde", "#e8743b", "#19a979", "#ed4a7b", "#945ecf", "#13a4b4", "#bf9d28", "#6c8893", "#a0a7b4"];
  const GROUP_NAMES = { app: "App", model: "Model", provider: "Provider", key: "Key" };
  const NONE = { app: "(no app sent)", key: "(no key)", model: "(none)", provider: "(none)" };
  let key = null;
  let session = null;
  const charts = {};
  let refreshTimer = null;

  const $ = (id) => document.getElementById(id);

  // An element with attributes (names fixed by this file) and children (strings become text nodes).
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else e.setAttribute(k, String(v));
    }
    for (const k of kids.flat()) {
      if (k === null || k === undefined) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  const int = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
  const ms = (n) => (n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-US"));
  const num1 = (n) => (n === null || n === undefined ? "–" : Number(n).toFixed(1));

  class AuthError extends Error {}

  async function api(path) {
    const r = await fetch(path, {
      headers: { Authorization: "Bearer " + key, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
    let body = null;
    try {
      body = await r.json();
    } catch (_) {
      body = null;
    }
    if (r.status === 401) throw new AuthError((body && body.error && body.error.message) || "The key was refused");
    if (!r.ok) throw new Error((body && body.error && body.error.message) || "HTTP " + r.status);
    return body;
  }

  // ---- login ---------------------------------------------------------------------------------------------------

  function showLogin(message) {
    key = null;
    session = null;
    try {
      sessionStorage.removeItem(STORE);
    } catch (_) {
      /* storage disabled */
    }
    if (refreshTimer) clearInterval(refreshTimer);
    refreshTimer = null;
    $("dash").hidden = true;
    $("forget").hidden = true;
    $("who").textContent = "";
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    $("key").value = "";
    $("key").focus();
  }

  async function open(k) {
    key = k;
    try {
      session = await api("/api/v1/ui/session");
    } catch (e) {
      showLogin(e instanceof AuthError ? "Key refused: " + e.message : "Cannot reach the gateway: " + e.message);
      return;
    }
    try {
      sessionStorage.setItem(STORE, k);
    } catch (_) {
      /* storage disabled: the key lives until the page is closed */
    }
    $("login").hidden = true;
    $("dash").hidden = false;
    $("forget").hidden = false;
    $("who").textContent =
      (session.label || "key") + " · " + (session.scope === "all" ? "all keys (management)" : "this key's usage");
    document.body.classList.toggle("scope-key", session.scope !== "all");
    for (const th of document.querySelectorAll(".key-col")) th.hidden = session.scope !== "all";
    $("group").querySelector('option[value="key"]').hidden = session.scope !== "all";
    const dl = clear($("models"));
    for (const m of session.models || []) dl.append(el("option", { value: m }));
    await refreshAll();
    refreshTimer = setInterval(() => {
      if (document.visibilityState === "visible") refreshAll();
    }, 30000);
  }

  async function guarded(section, fn) {
    const s = $(section);
    s.dataset.state = "loading";
    try {
      await fn();
      s.dataset.state = "ready";
    } catch (e) {
      if (e instanceof AuthError) {
        showLogin("Key refused: " + e.message);
        return;
      }
      s.dataset.state = "error";
      const body = s.querySelector("tbody");
      if (body) clear(body).append(el("tr", {}, el("td", { class: "error", colspan: 9 }, e.message)));
    }
  }

  function refreshAll() {
    return Promise.all([
      guarded("usage", loadUsage),
      guarded("health", loadHealth),
      guarded("generations", loadGenerations),
    ]);
  }

  // ---- usage ---------------------------------------------------------------------------------------------------

  function groupLabel(group, g) {
    if (g.other) return g.label;
    if (g.name === null || g.name === undefined) return NONE[group];
    if (group === "key" && g.label) return g.label + " (" + g.name + ")";
    return g.name;
  }

  function chart(id, title, xs, series, field, group) {
    const host = $(id);
    if (charts[id]) charts[id].destroy();
    clear(host);
    const width = Math.max(240, host.clientWidth || 300);
    const height = width < 500 ? 200 : 260;
    const opts = {
      title: "",
      width,
      height,
      cursor: { drag: { x: false, y: false } },
      legend: { live: false },
      scales: { x: { time: true }, y: { range: (u, lo, hi) => [0, hi > 0 ? hi * 1.1 : 1] } },
      axes: [{}, { size: field === "cost" ? 78 : 50, values: (u, v) => v.map((x) => (field === "cost" ? "$" + fmtAxis(x) : fmtAxis(x))) }],
      series: [{}].concat(
        series.map((s, i) => ({
          label: groupLabel(group, s),
          stroke: COLORS[s.other ? 8 : i % 8],
          width: 2,
          points: { show: xs.length <= 48 },
          value: (u, v) => (v === null || v === undefined ? "–" : field === "cost" ? "$" + v : String(v)),
        }))
      ),
    };
    const data = [xs.map((b) => b / 1000)].concat(series.map((s) => s[field]));
    charts[id] = new uPlot(opts, data, host);
    host.dataset.series = String(series.length);
    host.dataset.sum = String(series.reduce((a, s) => a + s[field].reduce((x, y) => x + y, 0), 0));
  }

  function fmtAxis(x) {
    if (x === 0) return "0";
    const a = Math.abs(x);
    if (a >= 1000) return (x / 1000).toFixed(a >= 10000 ? 0 : 1) + "k";
    if (a >= 1) return String(Math.round(x * 100) / 100);
    return String(Number(x.toPrecision(2)));
  }

  async function loadUsage() {
    const group = $("group").value;
    const range = $("range").value;
    const v = await api("/api/v1/ui/usage?group=" + encodeURIComponent(group) + "&range=" + encodeURIComponent(range));
    $("usage").dataset.group = group;
    $("usage").dataset.range = range;
    $("total-requests").textContent = int(v.totals.requests);
    $("total-cost").textContent = "$" + v.totals.cost_usd;
    $("total-prompt").textContent = int(v.totals.prompt_tokens);
    $("total-completion").textContent = int(v.totals.completion_tokens);
    $("usage-group-head").textContent = GROUP_NAMES[group] || group;
    chart("chart-requests", "Requests", v.buckets, v.series, "requests", group);
    chart("chart-cost", "Spend", v.buckets, v.series, "cost", group);
    const colorOf = new Map(v.series.map((s, i) => [s.other ? "\u0000other" : String(s.name), s.other ? 8 : i % 8]));
    const body = clear($("usage-table").querySelector("tbody"));
    if (!v.groups.length) body.append(el("tr", {}, el("td", { class: "empty", colspan: 5 }, "No generations in this range.")));
    for (const g of v.groups) {
      const c = g.other ? 8 : colorOf.get(String(g.name));
      const sw = c === undefined ? null : el("span", { class: "swatch c" + c, "aria-hidden": "true" });
      body.append(
        el(
          "tr",
          { class: g.other ? "other" : null, "data-group": g.other ? "" : g.name === null ? "" : g.name },
          el("td", { class: "name" }, sw, groupLabel(group, g)),
          el("td", { class: "num requests" }, int(g.requests)),
          el("td", { class: "num cost" }, g.cost_usd),
          el("td", { class: "num prompt" }, int(g.prompt_tokens)),
          el("td", { class: "num completion" }, int(g.completion_tokens))
        )
      );
    }
  }

  // ---- health --------------------------------------------------------------------------------------------------

  function uptime(u) {
    if (u === null || u === undefined) return "–";
    const m = el("meter", { min: 0, max: 100, low: 90, high: 99, optimum: 100, value: u });
    return el("span", { class: u < 90 ? "bad" : null }, m, u.toFixed(1) + "%");
  }

  async function loadHealth() {
    const v = await api("/api/v1/ui/health");
    const body = clear($("health-table").querySelector("tbody"));
    if (!v.providers.length) body.append(el("tr", {}, el("td", { class: "empty", colspan: 5 }, "No attempts in the window yet.")));
    for (const p of v.providers) {
      body.append(
        el(
          "tr",
          { "data-provider": p.provider },
          el("td", {}, p.provider_name, p.recent_outage ? el("span", { class: "bad" }, " · outage") : null),
          el("td", { class: "num uptime" }, uptime(p.uptime)),
          el("td", { class: "num" }, ms(p.latency_p50_ms)),
          el("td", { class: "num" }, num1(p.throughput_p50)),
          el("td", { class: "num samples" }, int(p.samples))
        )
      );
    }
    const eb = clear($("endpoint-table").querySelector("tbody"));
    for (const e of v.endpoints) {
      eb.append(
        el(
          "tr",
          {},
          el("td", { class: "mono" }, e.model),
          el("td", { class: "mono" }, e.endpoint, e.recent_outage ? el("span", { class: "bad" }, " · outage") : null),
          el("td", { class: "num" }, uptime(e.uptime)),
          el("td", { class: "num" }, ms(e.latency_p50_ms) + " / " + ms(e.latency_p90_ms)),
          el("td", { class: "num" }, num1(e.throughput_p50) + " / " + num1(e.throughput_p90)),
          el("td", { class: "num" }, int(e.samples))
        )
      );
    }
  }

  // ---- generations ---------------------------------------------------------------------------------------------

  function attemptList(g) {
    const at = g.provider_responses || [];
    const items = at.map((a, i) =>
      el(
        "li",
        { class: i === at.length - 1 ? "ok" : "bad" },
        el("span", { class: "mono" }, a.endpoint || a.provider || "?"),
        " · " + (a.status ? "HTTP " + a.status : "no response") + " · " + (a.code || ""),
        a.latency_ms !== undefined && a.latency_ms !== null ? " · " + ms(a.latency_ms) + " ms" : ""
      )
    );
    return el(
      "details",
      {},
      el("summary", {}, String(at.length) + (at.length === 1 ? " attempt" : " attempts")),
      el("ol", { class: "attempts" }, items)
    );
  }

  // Today's times as a clock time; older ones with their date.
  function when(t) {
    const d = new Date(t);
    const today = new Date();
    return d.toDateString() === today.toDateString()
      ? d.toLocaleTimeString()
      : d.toLocaleDateString(undefined, { month: "short", day: "numeric" }) + " " + d.toLocaleTimeString();
  }

  async function loadGenerations() {
    const v = await api("/api/v1/ui/generations?limit=50");
    const all = session && session.scope === "all";
    const body = clear($("gen-table").querySelector("tbody"));
    if (!v.data.length) body.append(el("tr", {}, el("td", { class: "empty", colspan: 9 }, "No generations yet.")));
    for (const g of v.data) {
      const app = g.app_title || g.http_referer || "–";
      body.append(
        el(
          "tr",
          { "data-id": g.id, "data-attempts": (g.provider_responses || []).length },
          el("td", { class: "time", title: g.id + " · " + new Date(g.created_ms).toISOString() }, when(g.created_ms)),
          el("td", { class: "mono" }, g.model, g.cancelled ? el("span", { class: "bad" }, " · cancelled") : null),
          el("td", {}, g.provider_name),
          el("td", {}, app),
          all ? el("td", { class: "key-col" }, g.key_label || g.key || "–") : null,
          el("td", { class: "num" }, int(g.tokens_prompt) + " / " + int(g.tokens_completion)),
          el("td", { class: "num cost" }, String(g.total_cost)),
          el("td", { class: "num" }, ms(g.latency)),
          el("td", {}, attemptList(g))
        )
      );
    }
  }

  // ---- plan ----------------------------------------------------------------------------------------------------

  function price(p, k) {
    const x = p && p[k];
    return x === undefined || x === null ? "–" : "$" + x;
  }

  async function loadPlan() {
    const model = $("plan-model").value.trim();
    const sort = $("plan-sort").value;
    const out = clear($("plan-out"));
    $("plan-error").textContent = "";
    if (!model) return;
    let qs = "?model=" + encodeURIComponent(model);
    if (sort) qs += "&sort=" + encodeURIComponent(sort);
    let v;
    try {
      v = await api("/api/v1/ui/plan" + qs);
    } catch (e) {
      if (e instanceof AuthError) return showLogin("Key refused: " + e.message);
      $("plan-error").textContent = e.message;
      $("plan").dataset.state = "error";
      return;
    }
    const p = v.data;
    out.append(el("p", { class: "hint" }, "Strategy: " + p.strategy + (p.fallback_costs_more ? " · a fallback costs more than the first attempt" : "")));
    const ol = el("ol", { class: "plan-attempts" });
    for (const a of p.attempts) {
      ol.append(
        el(
          "li",
          { "data-endpoint": a.endpoint },
          el("strong", {}, a.provider_name),
          " ",
          el("span", { class: "mono" }, a.model + " @ " + a.endpoint),
          el("br"),
          el("span", { class: "hint" }, a.reason + " · prompt " + price(a.prices, "prompt") + " / completion " + price(a.prices, "completion") + " per M" + (a.auth ? " · " + a.auth : ""))
        )
      );
    }
    out.append(ol);
    if (p.excluded && p.excluded.length) {
      const ul = el("ul", {});
      for (const x of p.excluded) ul.append(el("li", {}, el("span", { class: "mono" }, x.endpoint), " · " + x.reason + ": " + x.detail));
      out.append(el("details", {}, el("summary", {}, p.excluded.length + " excluded"), ul));
    }
    $("plan").dataset.state = "ready";
  }

  // ---- wiring --------------------------------------------------------------------------------------------------

  function start() {
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const k = $("key").value.trim();
      $("key").value = "";
      if (k) open(k);
    });
    $("forget").addEventListener("click", () => showLogin(""));
    $("group").addEventListener("change", () => guarded("usage", loadUsage));
    $("range").addEventListener("change", () => guarded("usage", loadUsage));
    $("refresh").addEventListener("click", () => refreshAll());
    $("plan-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      loadPlan();
    });
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        for (const [id, u] of Object.entries(charts)) {
          const w = Math.max(240, $(id).clientWidth || 300);
          u.setSize({ width: w, height: w < 500 ? 200 : 260 });
        }
      }, 150);
    });
    let saved = null;
    try {
      saved = sessionStorage.getItem(STORE);
    } catch (_) {
      saved = null;
    }
    if (saved) open(saved);
    else showLogin("");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
