// The live alerts page, in the console's look: open alerts, live updates (server-sent events),
// claim and acknowledge as the signed-in person; order numbers open the console's order detail.
// Values from alerts are only ever set as text, never as HTML.
//
// Rows stay where they are while someone works with the list: each alert keeps its own <tr>
// (updated in place, keyed by alert id), and while the pointer is over the list, a row is
// selected or a claim/acknowledgement is under way, new alerts wait behind the "N new alerts"
// button and rows that stop matching the filter (acknowledged, resolved) stay until then, so a
// click never lands on a row that slid under the pointer. Buttons carry their alert's id.
// The open detail is beside the list, not in it: it follows its alert at once, held or not.
"use strict";
(() => {
  const { t, el } = OT;
  OT.catalog = OT.boot.catalog || [];  // badges in the catalog's colours and labels
  const CONSOLE = OT.boot.consoleUrl;
  const alerts = new Map();  // alert id → the alert as last heard of
  const rows = new Map();    // alert id → its <tr>, while listed
  const drawn = new WeakMap();  // <tr> → the signature of what it shows
  const held = new Set();    // ids of matching alerts not listed yet (the list was held)
  const stale = new Set();   // ids of listed alerts changed while held: redrawn on release
  let acted = null;          // the alert this page just claimed or acknowledged: redrawn at once
  // a click this soon after its button appeared under a pointer that has not moved since was
  // aimed at what was there before: ignored (a pointer moved onto it saw it)
  const FRESH_MS = 400;
  let pointerMovedAt = 0;
  document.addEventListener("pointermove", () => { pointerMovedAt = performance.now(); }, { passive: true });
  let selected = null;       // the alert whose detail is open
  // the detail follows its alert (this page's claim, a colleague's, new reasons) while the list
  // may be held: what the detail was last asked for, and the newest ask (older answers dropped)
  let detailOf = null;
  let detailAsked = 0;
  let pointerInList = false;
  let busy = 0;              // claims and acknowledgements under way
  let loaded = false;
  // a desk reads the newest first: rows past these wait behind "show more" (a list of every
  // open alert ran to hundreds of rows); a change of filter starts again from the first
  const PAGE_ROWS = 100;
  let listedRows = PAGE_ROWS;
  const LOADED = 500;  // the newest alerts read when the page opens (then kept live)
  let capped = false;
  const $ = (id) => document.getElementById(id);
  // a tag as people type it: its name or the label its badge shows (VIP客户, Urgent), in any
  // case, full-width letters as ASCII ones
  const folded = (text) => text.normalize("NFKC").trim().toLowerCase();
  const tagIs = (name, typed) => folded(name) === typed || folded(OT.tagLabel(name)) === typed;
  const filters = () => ({ status: $("f-status").value, severity: $("f-severity").value,
                           tag: folded($("f-tag").value), team: $("f-team").value.trim() });
  const orderLink = (no) => el("a", { href: `${CONSOLE}/console/orders/${encodeURIComponent(no)}`, text: no });
  const severity = (s) => el("span", { class: `sev ${s}`, text: t(`alerts.severity.${s}`) });
  // an aside in the reader's punctuation: " (…)" in English, "（…）" in Chinese
  const aside = (text) => (OT.boot.lang === "zh-CN" ? `（${text}）` : ` (${text})`);
  const tier = (a) => OT.tagLabel(a.customer_tier || "regular");
  const teamName = (team) => (OT.boot.teams || {})[team] || team;
  $("f-team").append(...Object.entries(OT.boot.teams || {}).map(([team, name]) => el("option", { value: team, text: name })));
  const kindLabel = OT.alertKind;
  const newestFirst = (a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0);
  const holding = () => pointerInList || selected !== null || busy > 0;

  function visible(a) {
    const f = filters();
    return (!f.status || a.status === f.status) && (!f.severity || a.severity === f.severity)
      && (!f.tag || (a.tags || []).some((name) => tagIs(name, f.tag))) && (!f.team || a.team === f.team);
  }

  // who took the alert: "claimed by …", "acknowledged by …"
  const takenBy = (a) => [a.claimed_by && t("alerts.claimed_by", { who: a.claimed_by }),
    a.acknowledged_by && t("alerts.acked_by", { who: a.acknowledged_by })].filter(Boolean);

  function cells(a) {
    const failed = (a.deliveries || []).filter((d) => d.status === "failed").map((d) => d.channel);
    const who = el("td", { class: "c-who muted" }, ...takenBy(a).map((text) => el("div", { text })));
    const actions = el("td", { class: "c-acts" });
    const button = (act, label) => el("button", { type: "button", class: "btn small", "data-act": act, "data-id": a.alert_id, "data-drawn": String(performance.now()), text: t(label) });
    if (a.status === "open") {
      // a claimed alert keeps Claim's place (hidden): Acknowledge never moves up under the pointer
      const claim = button("claim", "alerts.claim");
      if (a.claimed_by) { claim.disabled = true; claim.classList.add("slot"); claim.setAttribute("aria-hidden", "true"); claim.tabIndex = -1; }
      actions.append(claim, button("ack", "alerts.ack"));
    }
    return [
      el("td", { class: "c-sev" }, severity(a.severity)),
      el("td", { class: "c-what" }, `${kindLabel(a.kind)}${a.escalated ? " ⇧" : ""}`,
        // the team and the time on lines of their own (the column cannot hold both on one)
        el("div", { class: "muted" }, el("span", { class: "team", title: a.team, text: teamName(a.team) })),
        el("div", { class: "muted nowrap", text: OT.when(a.created_at) }),
        failed.length ? el("div", { class: "failed", text: t("alerts.delivery_failed", { channels: failed.join(", ") }) }) : ""),
      el("td", { class: "c-order" }, el("span", { class: "ellipsis", title: a.order_no }, orderLink(a.order_no)),
        el("div", { class: "muted", text: `${t("alerts.customer")} ${a.customer_id}${aside(tier(a))}` })),
      el("td", { class: "c-num", text: OT.money(a.amount, a.currency) }),
      el("td", { class: "c-tags" }, ...(a.tags || []).map((name) => OT.badge(name))),
      who, actions];
  }

  // what a row shows: redrawn only when this changes
  const signature = (a) => JSON.stringify([a.severity, a.kind, a.escalated, a.team, a.created_at, a.status,
    a.order_no, a.customer_id, a.customer_tier, a.amount, a.currency, a.tags, a.claimed_by, a.acknowledged_by,
    (a.deliveries || []).map((d) => [d.channel, d.status])]);

  function draw(tr, a, hold) {
    const shown = signature(a);
    if (drawn.get(tr) === shown) { stale.delete(a.alert_id); return; }
    // held: a listed row keeps what it shows (a height change would move the rows under the
    // pointer), but the one this page just acted on shows its answer
    if (hold && drawn.has(tr) && a.alert_id !== acted) { stale.add(a.alert_id); return; }
    tr.className = `alert ${a.status}${a.alert_id === selected ? " selected" : ""}${tr.classList.contains("new") ? " new" : ""}`;
    drawn.set(tr, shown);
    stale.delete(a.alert_id);
    // a button the row had already keeps its age: only one that appears is fresh (FRESH_MS)
    const aged = Object.fromEntries([...tr.querySelectorAll("button[data-act]")].map((b) => [b.dataset.act, b.dataset.drawn]));
    tr.replaceChildren(...cells(a));
    for (const b of tr.querySelectorAll("button[data-act]")) if (aged[b.dataset.act]) b.dataset.drawn = aged[b.dataset.act];
  }

  function render({ release = false } = {}) {
    const hold = holding() && !release;
    const tbody = $("alerts");
    const matching = [...alerts.values()].filter(visible).sort(newestFirst);
    const wanted = matching.slice(0, listedRows);
    const wantedIds = new Set(wanted.map((a) => a.alert_id));
    held.clear();
    const order = [];
    for (const a of wanted) {
      let tr = rows.get(a.alert_id);
      if (!tr && hold) { held.add(a.alert_id); continue; }
      if (!tr) {
        tr = el("tr", { "data-id": a.alert_id, class: loaded ? "new" : "" });
        rows.set(a.alert_id, tr);
      }
      draw(tr, a, hold);
      order.push(tr);
    }
    for (const [id, tr] of rows) {
      if (wantedIds.has(id)) continue;
      if (hold) draw(tr, alerts.get(id), hold);  // stays where it is until released
      else { tr.remove(); rows.delete(id); stale.delete(id); }  // no longer waiting to be shown
    }
    if (!hold) {  // in order, moving only the rows out of place (each keeps its element)
      tbody.querySelector("tr.placeholder")?.remove();
      let cursor = tbody.firstElementChild;
      for (const tr of order) {
        if (tr === cursor) cursor = cursor.nextElementSibling;
        else tbody.insertBefore(tr, cursor);
      }
    }
    if (!rows.size) {
      tbody.replaceChildren(el("tr", { class: "placeholder" },
        el("td", { colspan: "7", class: "empty", text: t(alerts.size ? "alerts.none_match" : "alerts.none") })));
    }
    // the list read at most LOADED alerts: past that, more may match than the page holds
    $("count").textContent = t(capped ? "alerts.count_capped" : "alerts.count", { n: matching.length });
    // "more": matching alerts neither listed (a held list keeps rows past the first hundred)
    // nor waiting behind the "new alerts" button
    const unseen = matching.filter((a) => !rows.has(a.alert_id) && !held.has(a.alert_id)).length;
    const more = Math.min(PAGE_ROWS, unseen);
    $("more").hidden = more <= 0;
    $("more").textContent = more > 0 ? t("alerts.more", { n: more, total: matching.length }) : "";
    const waiting = held.size + stale.size;
    $("held").hidden = waiting === 0;
    $("held").textContent = t("alerts.held", { n: waiting });
    followDetail();
  }

  async function call(path, options = {}) {
    const headers = { Accept: "application/json" };
    if (options.method === "POST" && OT.boot.csrf) headers["X-CSRF-Token"] = OT.boot.csrf;
    const answer = await fetch(path, { ...options, headers, credentials: "same-origin" });
    if (answer.status === 401) { location.href = "/login"; throw new Error("signed out"); }
    if (!answer.ok) { OT.toast(`${answer.status}`, true); throw new Error(String(answer.status)); }
    return answer.json();
  }

  // an alert as the page last heard of it, unless what it holds is newer (each stored change
  // of an alert counts one ``version``; a change heard while the list loaded may be older)
  function keep(alert) {
    const known = alerts.get(alert.alert_id);
    if (known && alert.version !== undefined && known.version !== undefined && alert.version < known.version) return;
    alerts.set(alert.alert_id, { ...(known || {}), ...alert });
  }

  async function load() {
    const listed = await call(`/api/alerts?limit=${LOADED}`);
    capped = listed.length >= LOADED;
    for (const a of listed) keep(a);
    render({ release: !loaded });  // a reload after a reconnection keeps a held list held
    loaded = true;
  }

  async function act(id, action, button) {
    const drawnAt = Number(button.dataset.drawn || 0);
    if (drawnAt > pointerMovedAt && performance.now() - drawnAt < FRESH_MS) return;
    busy += 1;
    button.disabled = true;
    try {
      const a = await call(`/api/alerts/${encodeURIComponent(id)}/${action}`, { method: "POST" });
      alerts.set(a.alert_id, { ...(alerts.get(a.alert_id) || {}), ...a });
      acted = a.alert_id;
    } finally {
      busy -= 1;
      button.disabled = false;
      render();
      acted = null;
    }
  }

  function select(id) {
    selected = id;
    for (const [rowId, tr] of rows) tr.classList.toggle("selected", rowId === id);
    if (id === null) {
      $("detail").replaceChildren(el("p", { class: "empty", text: t("alerts.pick") }));
      render();
    }
  }

  // a reason as people say it: "Urgent · Info (default): express shipping → urgent"
  // what the detail shows of its alert: read again when this changes (the row's signature holds
  // no times, as the stream and the list write them differently)
  const detailSignature = (a) => JSON.stringify([signature({ ...a, created_at: null }), a.version,
    a.kinds, a.reasons, (a.deliveries || []).map((d) => d.attempts)]);

  async function detail(id) {
    select(id);
    await showDetail(id);
  }

  function followDetail() {
    const a = selected === null ? undefined : alerts.get(selected);
    if (a && detailSignature(a) !== detailOf) showDetail(selected).catch(() => {});
  }

  async function showDetail(id) {
    const ask = ++detailAsked;
    detailOf = alerts.has(id) ? detailSignature(alerts.get(id)) : null;
    const { alert: a, reasons, order: o } = await call(`/api/alerts/${encodeURIComponent(id)}`);
    if (selected !== id || ask !== detailAsked) return;  // another row was picked, or asked again
    const dl = el("dl", {});
    const add = (field, term, ...value) => dl.append(el("dt", { text: term }), el("dd", { "data-field": field }, ...value));
    add("severity", t("alerts.col.severity"), severity(a.severity));
    add("status", t("alerts.status"), t(`alerts.status.${a.status}`));
    const taken = takenBy(a);
    if (taken.length) add("who", t("alerts.col.who"), ...taken.map((text) => el("div", { text })));
    add("customer", t("alerts.customer"), `${a.customer_id}${aside(tier(a))}`);
    add("amount", t("alerts.col.amount"), OT.money(a.amount, a.currency));
    add("order-status", t("alerts.order_status"), o?.status ? OT.status(o.status) : "—");
    const why = reasons && reasons.length ? reasons.map(OT.alertCause) : (a.reasons || []);
    add("why", t("alerts.why"), el("ul", {}, ...why.map((text) => el("li", { text }))));
    const tags = (o?.tags || []).map((tag) => el("li", {}, OT.badge(tag.name), ` ${tag.reason || ""}`,
      tag.rule_id || tag.by ? el("span", { class: "muted", text: aside(tag.rule_id || tag.by) }) : null));
    const deliveries = (a.deliveries || []).map((d) => el("li", { text: `${d.channel}: ${t("alerts.delivery." + d.status)}${aside(t("alerts.attempts", { n: d.attempts }))}` }));
    $("detail").replaceChildren(
      el("div", { class: "head" }, el("h2", {}, `${kindLabel(a.kind)} · `, orderLink(a.order_no)),
        el("button", { type: "button", class: "btn small", id: "detail-close", text: t("alerts.close"), onclick: () => select(null) })),
      dl,
      el("h2", { text: t("alerts.col.tags") }), el("ul", {}, ...(tags.length ? tags : [el("li", { text: t("alerts.order_missing") })])),
      el("h2", { text: t("alerts.deliveries") }), el("ul", {}, ...(deliveries.length ? deliveries : [el("li", { text: t("alerts.page_only") })])),
      el("p", {}, el("a", { class: "btn", href: `${CONSOLE}/console/orders/${encodeURIComponent(a.order_no)}`, text: t("alerts.open_order") })));
  }

  $("alerts").addEventListener("click", (event) => {
    if (event.target.closest("a")) return;  // the order link opens the console
    const button = event.target.closest("button[data-act]");
    if (button) { act(button.dataset.id, button.dataset.act, button).catch(() => {}); return; }
    const tr = event.target.closest("tr.alert");
    if (tr) detail(tr.dataset.id).catch(() => {});
  });
  const list = $("alerts").closest("table");
  list.addEventListener("pointerenter", () => { pointerInList = true; });
  list.addEventListener("pointerleave", () => { pointerInList = false; render(); });
  document.addEventListener("keydown", (event) => { if (event.key === "Escape" && selected !== null) select(null); });
  $("held").addEventListener("click", () => render({ release: true }));
  for (const id of ["f-status", "f-severity", "f-tag", "f-team"]) $(id).addEventListener("input", () => { listedRows = PAGE_ROWS; render({ release: true }); });
  $("more").addEventListener("click", () => { listedRows += PAGE_ROWS; render({ release: true }); });

  function hear({ change, alert }) {
    if (change === "delivery_failed") {
      const a = alerts.get(alert.alert_id);
      if (a) a.deliveries = (a.deliveries || []).map((d) => (d.channel === alert.channel ? { ...d, status: "failed" } : d));
      return;
    }
    keep(alert);
  }

  // The list is read once the live stream is open (the server subscribes before it answers),
  // and again after each reconnection: an alert raised while the page loaded, or while it was
  // cut off, is never missed. Changes heard meanwhile wait for the list, then apply in turn.
  let heard = null;  // changes heard while the list (re)loads
  function connect() {
    const source = new EventSource("/api/events");
    source.onopen = async () => {
      $("status").textContent = t("alerts.live"); $("status").className = "live";
      if (heard) return;
      heard = [];
      try { await load(); } finally {
        for (const message of heard) hear(message);
        heard = null;
        render();
      }
    };
    source.onerror = () => { $("status").textContent = t("alerts.reconnecting"); $("status").className = ""; };
    source.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (heard) { heard.push(message); return; }
      hear(message);
      render();
    };
  }
  connect();
})();
