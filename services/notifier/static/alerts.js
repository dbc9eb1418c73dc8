// The live alerts page, in the console's look: open alerts, live updates (server-sent events),
// claim and acknowledge as the signed-in person; order numbers open the console's order detail.
// Values from alerts are only ever set as text, never as HTML.
"use strict";
(() => {
  const { t, el } = OT;
  const CONSOLE = OT.boot.consoleUrl;
  const alerts = new Map();
  const $ = (id) => document.getElementById(id);
  const filters = () => ({ status: $("f-status").value, severity: $("f-severity").value,
                           tag: $("f-tag").value.trim(), team: $("f-team").value.trim() });
  const orderLink = (no) => el("a", { href: `${CONSOLE}/console/orders/${encodeURIComponent(no)}`, text: no });
  const severity = (s) => el("span", { class: `sev ${s}`, text: t(`alerts.severity.${s}`) });

  function visible(a) {
    const f = filters();
    return (!f.status || a.status === f.status) && (!f.severity || a.severity === f.severity)
      && (!f.tag || (a.tags || []).includes(f.tag)) && (!f.team || a.team === f.team);
  }

  function row(a, fresh) {
    const failed = (a.deliveries || []).filter((d) => d.status === "failed").map((d) => d.channel);
    const who = el("td", { class: "muted" });
    if (a.claimed_by) who.append(el("div", { text: t("alerts.claimed_by", { who: a.claimed_by }) }));
    if (a.acknowledged_by) who.append(el("div", { text: t("alerts.acked_by", { who: a.acknowledged_by }) }));
    const actions = el("td");
    if (a.status === "open") {
      if (!a.claimed_by) actions.append(el("button", { class: "btn small", "data-act": "claim", text: t("alerts.claim") }), " ");
      actions.append(el("button", { class: "btn small", "data-act": "ack", text: t("alerts.ack") }));
    }
    return el("tr", { class: `alert ${a.status}${fresh ? " new" : ""}`, "data-id": a.alert_id },
      el("td", {}, severity(a.severity)),
      el("td", {}, `${OT.tagLabel(a.kind)}${a.escalated ? " ⇧" : ""}`,
        el("div", { class: "muted", text: `${a.team} · ${OT.when(a.created_at)}` }),
        failed.length ? el("div", { class: "failed", text: t("alerts.delivery_failed", { channels: failed.join(", ") }) }) : ""),
      el("td", {}, orderLink(a.order_no),
        el("div", { class: "muted", text: `${t("alerts.customer")} ${a.customer_id} (${OT.tagLabel(a.customer_tier || "regular")})` })),
      el("td", { class: "num", text: OT.money(a.amount, a.currency) }),
      el("td", {}, ...(a.tags || []).map((name) => OT.badge(name))),
      who, actions);
  }

  function render(freshId) {
    const list = [...alerts.values()].filter(visible).sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    $("alerts").replaceChildren(...(list.length ? list.map((a) => row(a, a.alert_id === freshId))
      : [el("tr", {}, el("td", { colspan: "7", class: "empty", text: t(alerts.size ? "alerts.none_match" : "alerts.none") }))]));
  }

  async function call(path, options = {}) {
    const headers = { Accept: "application/json" };
    if (options.method === "POST" && OT.boot.csrf) headers["X-CSRF-Token"] = OT.boot.csrf;
    const answer = await fetch(path, { ...options, headers, credentials: "same-origin" });
    if (answer.status === 401) { location.href = "/login"; throw new Error("signed out"); }
    if (!answer.ok) { OT.toast(`${answer.status}`, true); throw new Error(String(answer.status)); }
    return answer.json();
  }

  async function load() {
    for (const a of await call("/api/alerts?limit=500")) alerts.set(a.alert_id, a);
    render();
  }

  async function act(id, action) {
    const a = await call(`/api/alerts/${encodeURIComponent(id)}/${action}`, { method: "POST" });
    alerts.set(a.alert_id, a);
    render();
  }

  async function detail(id) {
    const { alert: a, order: o, delivery_attempts: _ } = await call(`/api/alerts/${encodeURIComponent(id)}`);
    const dl = el("dl", {});
    const add = (term, ...value) => dl.append(el("dt", { text: term }), el("dd", {}, ...value));
    add(t("alerts.col.severity"), severity(a.severity));
    add(t("alerts.status"), t(`alerts.status.${a.status}`) + (a.acknowledged_by ? ` · ${a.acknowledged_by}` : ""));
    add(t("alerts.customer"), `${a.customer_id} (${OT.tagLabel(a.customer_tier || "regular")})`);
    add(t("alerts.col.amount"), OT.money(a.amount, a.currency));
    add(t("alerts.order_status"), o?.status ? OT.status(o.status) : "—");
    add(t("alerts.why"), el("ul", {}, ...(a.reasons || []).map((r) => el("li", { text: r }))));
    const tags = (o?.tags || []).map((tag) => el("li", {}, OT.badge(tag.name), ` ${tag.reason || ""} `,
      el("span", { class: "muted", text: `(${tag.rule_id || tag.by || ""})` })));
    const deliveries = (a.deliveries || []).map((d) => el("li", { text: `${d.channel}: ${d.status} (${t("alerts.attempts", { n: d.attempts })})` }));
    $("detail").replaceChildren(
      el("h2", {}, `${OT.tagLabel(a.kind)} · `, orderLink(a.order_no)), dl,
      el("h2", { text: t("alerts.col.tags") }), el("ul", {}, ...(tags.length ? tags : [el("li", { text: t("alerts.order_missing") })])),
      el("h2", { text: t("alerts.deliveries") }), el("ul", {}, ...(deliveries.length ? deliveries : [el("li", { text: t("alerts.page_only") })])),
      el("p", {}, el("a", { class: "btn", href: `${CONSOLE}/console/orders/${encodeURIComponent(a.order_no)}`, text: t("alerts.open_order") })));
  }

  $("alerts").addEventListener("click", (event) => {
    if (event.target.closest("a")) return;  // the order link opens the console
    const tr = event.target.closest("tr.alert");
    if (!tr) return;
    const action = event.target.dataset.act;
    (action ? act(tr.dataset.id, action) : detail(tr.dataset.id)).catch(() => {});
  });
  for (const id of ["f-status", "f-severity", "f-tag", "f-team"]) $(id).addEventListener("input", () => render());

  function connect() {
    const source = new EventSource("/api/events");
    source.onopen = () => { $("status").textContent = t("alerts.live"); $("status").className = "live"; };
    source.onerror = () => { $("status").textContent = t("alerts.reconnecting"); $("status").className = ""; };
    source.onmessage = (event) => {
      const { change, alert } = JSON.parse(event.data);
      if (change === "delivery_failed") {
        const a = alerts.get(alert.alert_id);
        if (a) { (a.deliveries || []).forEach((d) => { if (d.channel === alert.channel) d.status = "failed"; }); render(); }
        return;
      }
      alerts.set(alert.alert_id, { ...(alerts.get(alert.alert_id) || {}), ...alert });
      render(change === "created" ? alert.alert_id : undefined);
    };
  }
  load().then(connect);
})();
