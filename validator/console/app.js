// Gleaner validator console: reads /console/api/* and renders. No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const fmt = (n) => (n ?? 0).toLocaleString("en-US");
const when = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) + "Z" : "–");
const short = (s, n = 12) => (s && s.length > n ? s.slice(0, n) + "…" : s || "");
const bytes = (b) => {
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (b >= 1000 && i < u.length - 1) { b /= 1000; i++; }
  return `${b.toFixed(i ? 1 : 0)} ${u[i]}`;
};

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function fillTable(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  if (!rows.length) {
    body.append(el("tr", {}, el("td", { colspan: "9", class: "muted" }, "none yet")));
    return;
  }
  for (const cells of rows) body.append(el("tr", {}, ...cells.map((c) => (c instanceof Node ? el("td", {}, c) : el("td", {}, c)))));
}

// What each cross-check outcome means (store/ingest.rs, store/tiebreaks.rs).
const CHECK_OUTCOMES = {
  pending: "waiting for a second node's fetch",
  agreed: "the second fetch (a node's or the validator's) agrees",
  auditing: "agreed; waiting for the validator's audit",
  audit_disputed: "the validator's audit disagrees with both nodes: waiting for a third fetch",
  audit_refuted: "a third fetch bore the audit out: both nodes penalised",
  three_way: "the validator's fetch agrees with neither node: waiting for a fourth fetch",
  both_refuted: "a fourth fetch bore the validator out against both nodes: both penalised",
  disputed: "the fetches disagree: waiting for a third fetch",
  unfound: "the checker found no page: waiting for the validator's fetch",
  unchecked: "no node got the check done: waiting for the validator's fetch",
  primary_upheld: "a third fetch bore the primary out: the checker penalised",
  check_upheld: "a third fetch bore the checker out: the primary penalised",
  inconclusive: "a third fetch agreed with both or neither: nobody penalised",
  page_gone: "the site says there is no page: the claimed record revoked",
  abandoned: "could not be done: nobody blamed",
};

function renderOverview(o) {
  const s = o.stats;
  $("validator").textContent = `${o.validator} · v${o.version}`;
  $("nodes").textContent = fmt(s.nodes_total);
  $("nodes-active").textContent = `${fmt(s.nodes_active_24h)} active in 24 h`;
  $("records").textContent = fmt(s.records_total);
  $("records-split").textContent = `${fmt(s.records_accepted)} accepted · ${fmt(s.records_duplicate)} duplicate · ${fmt(s.records_rejected)} rejected · ${fmt(s.records_revoked)} revoked`;
  $("acceptance").textContent = `${(100 * (s.acceptance_rate || 0)).toFixed(1)} %`;
  $("open-epoch").textContent = fmt(s.open_epoch);
  $("frontier").textContent = `${fmt(s.frontier_queued)} URLs queued · ${fmt(s.leases_open)} leases open`;
  const max = Math.max(1, ...s.pages_per_hour.map((p) => p[1]));
  $("pph").replaceChildren(...s.pages_per_hour.map(([t, n]) => {
    const d = el("div", { title: `${when(t)}: ${n} pages` });
    d.style.height = `${(100 * n) / max}%`;
    return d;
  }));
  fillTable("reasons", s.rejection_reasons.map((r) => [el("code", {}, r.reason), fmt(r.count)]));
  fillTable("failures", s.failure_reasons.map((r) => [el("code", {}, r.reason), fmt(r.count)]));
  fillTable("checks", s.check_outcomes.map((r) => [el("code", {}, r.reason), fmt(r.count), CHECK_OUTCOMES[r.reason] || ""]));
  fillTable("revocations", o.revocations.map((r) => [fmt(r.seq), el("code", { title: r.node }, short(r.node, 12)),
    el("a", { href: r.url, rel: "noreferrer" }, short(r.url, 64)), fmt(r.epoch), el("code", {}, r.reason)]));
  fillTable("epoch-table", s.epochs.map((e) => [fmt(e.epoch), when(e.closed_at_ms), el("code", { title: e.root }, short(e.root, 20)), fmt(e.total), fmt(e.leaf_count)]));
}

function renderCatalog(list) {
  const root = $("catalog");
  root.replaceChildren();
  if (!list.length) {
    root.append(el("p", { class: "muted" }, "No dataset exported yet: run gleaner-validator dataset export."));
    return;
  }
  for (const d of list) {
    const files = el("div", { class: "files" });
    for (const f of d.files) files.append(el("a", { href: f.url, title: `blake3 ${f.blake3}` }, `${f.path} (${bytes(f.bytes)})`));
    const sample = el("table", { class: "sample" },
      el("thead", {}, el("tr", {}, ...["url", "date", "lang", "tokens", "text"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...d.sample.map((r) => el("tr", {},
        el("td", {}, el("a", { href: r.url, rel: "noreferrer" }, short(r.url, 48))),
        el("td", {}, r.date), el("td", {}, r.language), el("td", {}, fmt(r.token_count)),
        el("td", { class: "text" }, r.text)))));
    root.append(el("div", { class: "dataset" },
      el("h3", {}, d.name),
      el("p", { class: "muted" }, `${fmt(d.rows)} rows · epochs ${d.epoch_from}–${d.epoch_to} · ${bytes(d.bytes)} · `,
        el("a", { href: d.manifest_url }, "manifest.json")),
      files, sample));
  }
}

async function load() {
  try {
    const [o, c] = await Promise.all([
      fetch("/console/api/overview").then((r) => r.json()),
      fetch("/console/api/datasets").then((r) => r.json()),
    ]);
    renderOverview(o);
    renderCatalog(c);
    $("status").textContent = `updated ${when(Date.now())}`;
    document.body.dataset.loaded = "true";
  } catch (e) {
    $("status").textContent = `failed to load: ${e}`;
  }
}

load();
setInterval(load, 15000);
