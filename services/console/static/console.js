// Shared by every console page: messages and labels, calls to the Tag API with the session's
// CSRF token, tag badges. Values from orders are only ever set as text, never as HTML.
"use strict";
const BOOT = JSON.parse(document.getElementById("boot").textContent);
const OT = {
  boot: BOOT,
  t(key, values) {
    let text = BOOT.messages[key] ?? key;
    for (const [k, v] of Object.entries(values || {})) text = text.replaceAll(`{${k}}`, String(v));
    return text;
  },
  // a value's word from the messages (alerts.kind. + fraud_risk: 欺诈风险), else the value
  word(prefix, value) { return BOOT.messages[prefix + value] ?? value ?? ""; },
  tagLabel(name) {
    const L = BOOT.labels;
    // the catalog's label in the person's language first (custom tags carry their own)
    const entry = (OT.catalog || []).find((t) => t.name === name);
    if (entry && entry.labels && entry.labels[BOOT.lang]) return entry.labels[BOOT.lang];
    if (L.tags[name]) return L.tags[name];
    // prefix + value (category:beauty 美妆, prefers:beauty 偏好：美妆): the value by its group's
    // label, an unlabelled value as itself (builtin_labels.tag_label on the server)
    for (const [prefix, how] of Object.entries(L.prefixed || {})) {
      if (name.startsWith(prefix) && name.length > prefix.length) {
        const value = name.slice(prefix.length);
        return (how.label || "{value}").replaceAll("{value}", (L[how.group] || {})[value] ?? value);
      }
    }
    return name;
  },
  status(value) { return BOOT.labels.statuses[value] ?? value ?? ""; },
  region(value) { return BOOT.labels.regions[value] ?? value ?? ""; },
  family(value) { return BOOT.labels.families[value] ?? value ?? ""; },
  // a value's display label from one group of the labels (shipping_methods, payment_methods...)
  label(group, value) { return (BOOT.labels[group] || {})[value] ?? value ?? ""; },
  async api(path, options = {}) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (options.method && options.method !== "GET") headers["X-CSRF-Token"] = BOOT.csrf;
    const response = await fetch(path, {
      ...options, headers, credentials: "same-origin",
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    if (response.status === 401) { location.href = "/console/login?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("signed out"); }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) {
      const detail = data && data.detail;
      const text = Array.isArray(detail) ? detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ") : detail;
      const error = new Error(text || `${response.status}`);
      error.status = response.status;
      throw error;
    }
    return data;
  },
  el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  },
  catalog: null,
  async loadCatalog() {
    // names, labels, colours for badges and pickers: no usage counts (they read every order)
    if (!OT.catalog) OT.catalog = await OT.api("/tags?usage=false");
    return OT.catalog;
  },
  colourOf(name) {
    const entry = (OT.catalog || []).find((t) => t.name === name);
    return entry ? entry.colour : "#8c8c8c";
  },
  badge(name, extra = {}) {
    const colour = extra.colour || OT.colourOf(name);
    const span = OT.el("span", { class: "tag" + (extra.manual ? " manual" : ""), title: name, "data-tag": name, text: OT.tagLabel(name) });
    span.style.color = colour; span.style.borderColor = colour; span.style.background = colour + "14";
    return span;
  },
  fillTagSelect(select, { withEmpty = false, activeOnly = false } = {}) {
    select.replaceChildren();
    if (withEmpty) select.append(OT.el("option", { value: "", text: OT.t("filter.any") }));
    // every picker is over orders: a tag only customer rules give sits on no order
    for (const tag of OT.catalog || []) {
      if ((activeOnly && !tag.active) || tag.on_customers) continue;
      const option = OT.el("option", { value: tag.name, text: `${OT.tagLabel(tag.name)} (${tag.name})` });
      option.style.color = tag.colour;
      select.append(option);
    }
  },
  toast(text, bad = false) {
    const box = document.getElementById("toast");
    box.textContent = text; box.className = "show" + (bad ? " bad" : "");
    clearTimeout(OT._toast); OT._toast = setTimeout(() => { box.className = ""; }, 5000);
  },
  // every time on every page, in the reader's time zone and words (server-rendered ones too:
  // shared/times.py gives them as <time data-local>, set below)
  when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return d.toLocaleString(BOOT.lang, { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  },
  day(iso) {
    if (!iso) return "";
    return new Date(iso).toLocaleDateString(BOOT.lang, { year: "numeric", month: "2-digit", day: "2-digit" });
  },
  money(amount, currency) {
    const n = Number(amount);
    // shared/money.money_text's twin (server-rendered pages): 1,937.00 CNY in either language
    return n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) + (currency ? " " + currency : "");
  },
  async watchJob(jobId, onProgress) {
    // poll the job until it is done or failed; the Tag API stores progress in MongoDB
    for (;;) {
      const job = await OT.api(`/jobs/${encodeURIComponent(jobId)}`);
      onProgress(job);
      if (job.status !== "running") return job;
      await new Promise((r) => setTimeout(r, 400));
    }
  },
};
window.OT = OT;
for (const time of document.querySelectorAll("time[data-local]")) {
  time.textContent = time.dataset.local === "day" ? OT.day(time.dateTime) : OT.when(time.dateTime);
}
