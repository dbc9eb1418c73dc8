// Order detail: fields, tags with who/why/since/until, history timeline, manual tags, alerts,
// and which rules fire for it.
"use strict";
(() => {
  const { t, api, el } = OT;
  const $ = (id) => document.getElementById(id);
  const orderNo = $("detail").dataset.order;
  const path = `/orders/${encodeURIComponent(orderNo)}`;

  function field(list, label, value) {
    if (value === null || value === undefined || value === "") return;
    list.append(el("dt", { text: label }), el("dd", { text: String(value) }));
  }
  function drawOrder(doc) {
    const o = doc.order, list = $("fields"); list.replaceChildren();
    // the order's currency is kept beside it (the stored pricing leaves the default out)
    const currency = o.pricing.currency || doc.currency;
    field(list, t("col.status"), OT.status(doc.status));
    field(list, t("col.customer"), `${o.customer.name} (${o.customer.id})${o.customer.vip ? " · VIP" : ""}`);
    field(list, t("order.company"), o.customer.company);
    field(list, t("order.contact"), [o.customer.phone, o.customer.email].filter(Boolean).join(" · "));
    field(list, t("col.amount"), OT.money(o.pricing.total, currency));
    field(list, t("order.discount"), Number(o.pricing.discount) ? OT.money(o.pricing.discount, currency) : "");
    field(list, t("order.shipping_fee"), Number(o.pricing.shipping_fee) ? OT.money(o.pricing.shipping_fee, currency) : "");
    field(list, t("order.payment"), o.payment ? `${OT.label("payment_methods", o.payment.method)}${o.payment.paid_at ? " · " + OT.when(o.payment.paid_at) : ""}` : "");
    const ship = o.shipping || {};
    field(list, t("order.shipping"), [OT.label("shipping_methods", ship.method || "standard"), OT.region(doc.region), ship.province, ship.city, ship.address].filter(Boolean).join(" · "));
    field(list, t("order.requested"), OT.when(o.requested_delivery_at));
    field(list, t("order.sales_rep"), o.sales_rep);
    field(list, t("order.channel"), OT.label("channels", o.channel));
    field(list, t("col.created_at"), OT.when(o.created_at));
    field(list, t("order.notes"), o.notes);
    const body = document.querySelector("#lines tbody"); body.replaceChildren();
    for (const line of o.lines) body.append(el("tr", {}, el("td", { text: line.sku }), el("td", { class: "cust", text: line.name }), el("td", { text: OT.label("categories", line.category) }), el("td", { class: "num", text: String(line.quantity) }), el("td", { class: "num", text: OT.money(line.unit_price, currency) })));
  }
  function drawTags(doc) {
    if (BOOT.canTag) OT.fillTagSelect($("m-tag"), { empty: t("bulk.choose_tag"), forAdding: true, held: new Set(doc.tags.map((tag) => tag.name)) });
    const list = $("applied"); list.replaceChildren();
    if (!doc.tags.length) list.append(el("li", { class: "muted", text: t("order.no_tags") }));
    for (const tag of doc.tags) {
      const manual = tag.source === "manual";
      const who = manual ? t("order.by_person", { who: tag.by || "?" }) : t("order.by_rule", { rule: tag.rule_id, version: tag.rule_version });
      const li = el("li", { "data-tag": tag.name, "data-source": tag.source }, OT.badge(tag.name, { manual }),
        el("span", { class: "why", text: tag.reason }),
        el("span", { class: "meta", text: [who, t("order.since", { when: OT.when(tag.at) }), tag.family ? OT.family(tag.family) : "", tagUntil(tag)].filter(Boolean).join(" · ") }));
      if (OT.mayRemove(tag.name, tag.source)) li.append(el("button", { class: "btn small danger", type: "button", text: t("common.remove"), "aria-label": t("common.remove") + " " + OT.tagLabel(tag.name), onclick: () => change({ remove: [tag.name] }) }));
      list.append(li);
    }
  }
  const HOLDS = JSON.parse(document.getElementById("holds").textContent);
  function tagUntil(tag) {
    // a rule with holds_while keeps its tag only while that holds (urgent: until shipped)
    const words = tag.source !== "manual" && HOLDS[tag.rule_id];
    return words ? t("order.holds_while", { cond: words }) : "";
  }
  function drawHistory(doc) {
    const list = $("history"); list.replaceChildren();
    const entries = [...(doc.history || [])].reverse();
    if (!entries.length) list.append(el("li", { class: "muted", text: t("order.no_history") }));
    for (const h of entries) {
      const parts = [];
      for (const a of h.added) parts.push("+" + OT.tagLabel(a.tag));
      for (const r of h.removed) parts.push("−" + OT.tagLabel(r.tag));
      // a removed tag's reason is why it had been given: said as what no longer holds (the
      // rules took it away) or as the reason it had (a person removed it)
      const gone = (reason) => t(h.by ? "history.had" : "history.no_longer", { reason });
      const reasons = [...h.added.map((a) => a.reason), ...h.removed.map((r) => r.reason && gone(r.reason))].filter(Boolean);
      list.append(el("li", {}, el("time", { datetime: h.at, text: OT.when(h.at) + " · " + (h.by || t("order.rules")) }), el("div", { text: parts.join("  ") }), el("div", { class: "muted", text: reasons.join(t("history.separator")) })));
    }
  }
  async function drawAlerts() {
    const list = $("alerts"); list.replaceChildren();
    const alerts = await api(`/console/api/orders/${encodeURIComponent(orderNo)}/alerts`);
    if (!alerts.length) list.append(el("li", { class: "muted", text: t("order.no_alerts") }));
    for (const a of alerts) list.append(el("li", { "data-alert": a.alert_id }, el("strong", { text: `${OT.word("alerts.kind.", a.kind)} · ${OT.word("alerts.severity.", a.severity)}` }), " ", el("span", { class: "muted", text: `${OT.when(a.created_at)} · ${OT.word("alerts.status.", a.status)}${a.acknowledged_by ? " · " + a.acknowledged_by : ""}` }), el("div", { class: "why" }, ...OT.alertWhy(a).map((text) => el("div", { text })))));
  }
  async function drawExplain() {
    const body = document.querySelector("#explain tbody"); body.replaceChildren();
    const result = await api(`/console/api/orders/${encodeURIComponent(orderNo)}/explain`);
    for (const r of result.rules) {
      const verdict = r.fires ? t("rules.yes") : r.matches ? t("rules.taken") : t("rules.no");
      body.append(el("tr", { class: r.fires ? "" : "muted", "data-rule": r.rule_id }, el("td", { text: `${r.rule_id} v${r.version}` }), el("td", { text: verdict }), el("td", {}, r.tag ? OT.badge(r.tag) : ""), el("td", { class: "wrap", text: r.reason || "" })));
    }
  }
  async function change(body) {
    const reason = ($("m-reason") && $("m-reason").value.trim()) || t("bulk.default_reason");
    // with free tags, an addition's refusal stays beside the form (the typed name is marked)
    const box = body.add && $("m-error");
    if (box) OT.clearProblems(box, $("manual"));
    try {
      await api(`${path}/tags`, { method: "POST", body: { add: [], remove: [], ...body, reason } });
      if ($("m-new")) $("m-new").value = "";
      OT.toast(t("order.changed")); await load();
    } catch (e) { if (box) OT.showProblems(box, e, $("manual")); else OT.toast(e.message, true); }
  }
  // the tag to add: a typed free tag's name (where free tags are allowed), else the picked one
  function added() {
    const typed = $("m-new") ? OT.tagName($("m-new").value) : "";
    if (!typed) return { name: $("m-tag").value, problem: null };
    return { name: typed, problem: OT.freeTagProblem(typed) };
  }
  async function load() {
    let doc;
    try { doc = await api(`${path}?lang=${encodeURIComponent(BOOT.lang)}`); } catch (e) { $("fields").replaceChildren(el("p", { class: "error", text: e.message })); return; }
    drawOrder(doc); drawTags(doc); drawHistory(doc);
  }
  async function start() {
    await OT.loadCatalog();
    if (BOOT.canTag) {
      $("manual").addEventListener("submit", (e) => {
        e.preventDefault();
        const { name, problem } = added();
        if (!name) { OT.toast(t($("m-new") ? "bulk.pick_tag" : "order.pick_tag"), true); $("m-tag").focus(); return; }
        if (problem) { OT.showProblems($("m-error"), OT.nameProblem(problem), $("manual")); $("m-new").focus(); return; }
        change({ add: [name] });
      });
    }
    await load();
    drawAlerts().catch((e) => OT.toast(e.message, true));
    drawExplain().catch((e) => OT.toast(e.message, true));
  }
  start();
})();
