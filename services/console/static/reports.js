// Reports: ECharts (served by ordertag, no CDN), each chart with its table and a CSV download.
"use strict";
(() => {
  const { t, api, el } = OT;
  const $ = (id) => document.getElementById(id);
  const charts = {};
  const palette = ["#1677ff", "#52c41a", "#faad14", "#f5222d", "#722ed1", "#13c2c2", "#eb2f96", "#fa8c16"];

  function section(id, columns, rows, chartOption) {
    const box = $(id);
    const chart = charts[id] || (charts[id] = echarts.init(box.querySelector(".chart"), null, { renderer: "canvas" }));
    chart.setOption({ color: palette, ...chartOption }, true);
    box.dataset.rows = String(rows.length);
    const head = box.querySelector("thead"), body = box.querySelector("tbody");
    head.replaceChildren(el("tr", {}, ...columns.map(([, label]) => el("th", { text: label }))));
    // a column's third element words its values on the page (money); the CSV keeps them raw
    body.replaceChildren(...rows.map((r) => el("tr", {}, ...columns.map(([key, , shown]) => el("td", { text: String(shown ? shown(r[key]) : r[key]) })))));
    const csv = "\ufeff" + [columns.map(([, l]) => l), ...rows.map((r) => columns.map(([k]) => r[k]))]
      .map((line) => line.map((v) => `"${String(v).replaceAll('"', '""')}"`).join(",")).join("\r\n");
    const link = box.querySelector("a.csv");
    if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([csv], { type: "text/csv;charset=utf-8" }));
    link.download = `${id}.csv`;
  }
  function filterQuery() {
    const params = new URLSearchParams();
    if ($("r-tag").value) params.append("all_tags", $("r-tag").value);
    return params;
  }
  async function overTime() {
    // a day is the reader's day (their zone's name: each order at its date's offset)
    const params = filterQuery(); params.set("period", $("r-period").value); params.set("tz", OT.zone());
    const rows = await api("/reports/tags-over-time?" + params);
    const totals = {};
    for (const r of rows) totals[r.tag] = (totals[r.tag] || 0) + r.orders;
    const top = Object.entries(totals).sort((a, b) => b[1] - a[1]).slice(0, 8).map(([tag]) => tag);
    const periods = [...new Set(rows.map((r) => r.period))].sort();
    // one period draws no line: bars then, so a first day's figures still show
    const type = periods.length > 1 ? "line" : "bar";
    const series = top.map((tag) => ({ name: OT.tagLabel(tag), type, smooth: true, showSymbol: true, data: periods.map((p) => (rows.find((r) => r.period === p && r.tag === tag) || { orders: 0 }).orders) }));
    section("over-time", [["period", t("reports.col_period")], ["label", t("col.tags")], ["orders", t("tags.orders")]],
      rows.map((r) => ({ ...r, label: OT.tagLabel(r.tag) })),
      { tooltip: { trigger: "axis" }, legend: { type: "scroll", bottom: 0 }, grid: { left: 40, right: 16, top: 16, bottom: 48 }, xAxis: { type: "category", data: periods }, yAxis: { type: "value", minInterval: 1 }, series });
  }
  async function share() {
    const rows = (await api("/reports/tag-share?" + filterQuery())).slice(0, 15);
    section("share", [["label", t("col.tags")], ["orders", t("tags.orders")], ["pct", t("reports.col_share")]],
      rows.map((r) => ({ ...r, label: OT.tagLabel(r.tag), pct: (r.share * 100).toFixed(1) + "%" })),
      { tooltip: { trigger: "axis", axisPointer: { type: "shadow" } }, grid: { left: 110, right: 24, top: 8, bottom: 24 }, xAxis: { type: "value", max: 1, axisLabel: { formatter: (v) => Math.round(v * 100) + "%" } },
        yAxis: { type: "category", inverse: true, axisLabel: { interval: 0 }, data: rows.map((r) => OT.tagLabel(r.tag)) },
        series: [{ type: "bar", data: rows.map((r) => ({ value: r.share, itemStyle: { color: OT.colourOf(r.tag) } })) }] });
  }
  async function topCustomers() {
    const tag = $("r-top-tag").value || "urgent";
    const rows = await api("/reports/top-customers?" + new URLSearchParams({ tag, limit: 10 }));
    // a customer by name and id (the CSV keeps them apart); spend in the one currency the
    // Tag API summed (its default; no sum across currencies means anything)
    const currency = rows.length ? rows[0].currency : "";
    const who = (r) => (r.name ? `${r.name} (${r.customer_id})` : r.customer_id);
    section("top-customers", [["customer_id", t("col.customer_id")], ["name", t("col.name")], ["orders", t("tags.orders")], ["amount", t("col.amount"), (v) => OT.money(v, currency)]], rows,
      { tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, valueFormatter: (v) => OT.money(v, currency) }, grid: { left: 150, right: 24, top: 8, bottom: 24 },
        xAxis: { type: "value", name: currency, axisLabel: { formatter: (v) => Number(v).toLocaleString("en-US") } },
        yAxis: { type: "category", inverse: true, data: rows.map(who) }, series: [{ type: "bar", name: t("col.amount"), data: rows.map((r) => Number(r.amount)), itemStyle: { color: OT.colourOf(tag) } }] });
  }
  async function ruleHits() {
    // each rule by what it gives in the reader's words (紧急, 品类), its id beside (the CSV keeps
    // the id alone); tags set by hand as such
    const rows = (await api("/console/api/reports/rule-hits")).slice(0, 20).map((r) => ({
      ...r,
      gives: r.rule_id === "manual" ? t("reports.manual") : r.tag ? OT.tagLabel(r.tag) : r.family ? OT.family(r.family) : r.rule_id,
    }));
    const bar = (r) => (r.gives === r.rule_id || r.rule_id === "manual" ? r.gives : `${r.gives} · ${r.rule_id}`);
    section("rule-hits", [["rule_id", t("rules.rule")], ["gives", t("col.tags")], ["orders", t("rules.hits")]], rows,
      { tooltip: { trigger: "axis", axisPointer: { type: "shadow" } }, grid: { left: 230, right: 24, top: 8, bottom: 24 }, xAxis: { type: "value", minInterval: 1 },
        yAxis: { type: "category", inverse: true, axisLabel: { interval: 0 }, data: rows.map(bar) }, series: [{ type: "bar", data: rows.map((r) => r.orders) }] });
  }
  async function drawAll() {
    for (const draw of [overTime, share, topCustomers, ruleHits]) draw().catch((e) => OT.toast(e.message, true));
  }
  async function start() {
    await OT.loadCatalog();
    OT.fillTagSelect($("r-tag"), { empty: t("filter.any") });
    OT.fillTagSelect($("r-top-tag"));
    $("r-top-tag").value = "urgent";
    $("report-filter").addEventListener("submit", (e) => { e.preventDefault(); drawAll(); });
    window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));
    await drawAll();
  }
  start();
})();
