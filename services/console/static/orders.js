// Orders: filters, saved views, cursor pages, selection and batch tagging (批量操作), exports.
"use strict";
(() => {
  const { t, api, el } = OT;
  const $ = (id) => document.getElementById(id);
  const EMPTY = () => ({ all_tags: [], any_tags: [], none_tags: [] });
  const state = { filter: EMPTY(), sort: "-created_at", cursors: [null], page: 0, next: null, rows: [], selected: new Set(), view: null };

  function cleanFilter(f) {
    const out = {};
    for (const [k, v] of Object.entries(f)) if (v !== "" && v !== null && v !== undefined && !(Array.isArray(v) && !v.length)) out[k] = v;
    return out;
  }
  function query(f, extra = {}) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(cleanFilter(f))) (Array.isArray(v) ? v : [v]).forEach((x) => params.append(k, x));
    for (const [k, v] of Object.entries(extra)) if (v !== null && v !== undefined) params.set(k, v);
    return params.toString();
  }
  const dayStart = (value, plusDays = 0) => {
    const [y, m, d] = value.split("-").map(Number);
    return new Date(y, m - 1, d + plusDays).toISOString();
  };

  // a to-day before the from-day is sent as an empty range (each day is sent as its start, the
  // to-day as the next day's), which the Tag API would take: refused here as it would be
  function checked(f) {
    if (f.created_from && f.created_to && f.created_from >= f.created_to) {
      const error = new Error(t("problem.from_after_to", { from: t("filter.created_from"), to: t("filter.created_to") }));
      throw Object.assign(error, { status: 422, problems: [{ field: "created_from" }, { field: "created_to" }] });
    }
    return f;
  }
  function readForm() {
    const f = { all_tags: state.filter.all_tags, any_tags: state.filter.any_tags, none_tags: state.filter.none_tags };
    f.status = $("f-status").value; f.region = $("f-region").value; f.customer_id = $("f-customer").value.trim();
    f.amount_min = $("f-amin").value.trim(); f.amount_max = $("f-amax").value.trim();
    if ($("f-from").value) f.created_from = dayStart($("f-from").value);
    if ($("f-to").value) f.created_to = dayStart($("f-to").value, 1);
    state.filter = f; state.sort = $("f-sort").value;
  }
  function writeForm() {
    const f = state.filter;
    $("f-status").value = f.status || ""; $("f-region").value = f.region || ""; $("f-customer").value = f.customer_id || "";
    $("f-amin").value = f.amount_min || ""; $("f-amax").value = f.amount_max || "";
    const day = (iso, minus) => { if (!iso) return ""; const d = new Date(iso); d.setDate(d.getDate() - minus); return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`; };
    $("f-from").value = day(f.created_from, 0); $("f-to").value = day(f.created_to, 1);
    $("f-sort").value = state.sort;
    drawPicked();
  }
  function drawPicked() {
    const box = $("picked"); box.replaceChildren();
    for (const mode of ["all_tags", "any_tags", "none_tags"]) {
      for (const name of state.filter[mode] || []) {
        const chip = OT.badge(name);
        chip.prepend(t(`filter.${mode}`) + ": ");
        chip.append(el("button", { type: "button", "aria-label": t("common.remove") + " " + OT.tagLabel(name), text: "×", onclick: () => {
          state.filter[mode] = state.filter[mode].filter((x) => x !== name); drawPicked(); reload();
        } }));
        box.append(chip);
      }
    }
  }

  async function reload() {
    state.cursors = [null]; state.page = 0; state.selected.clear();
    if ($("select-filter")) $("select-filter").checked = false;
    history.replaceState(null, "", "?" + new URLSearchParams({ f: JSON.stringify(cleanFilter(state.filter)), sort: state.sort, ...(state.view ? { view: state.view } : {}) }));
    await load();
  }
  async function load() {
    const cursor = state.cursors[state.page];
    let data;
    try { data = await api("/orders?" + query(checked(state.filter), { sort: state.sort, limit: 50, cursor })); }
    catch (e) {
      // the rows shown would read as the new filter's: the list empties and the form says why
      state.rows = []; state.next = null; drawRows();
      $("empty").hidden = true; $("not-queried").hidden = e.status !== 422; $("more").disabled = true;
      OT.showProblems($("filter-error"), e, $("filters"));
      return;
    }
    OT.clearProblems($("filter-error"), $("filters")); $("not-queried").hidden = true;
    state.rows = data.orders; state.next = data.next_cursor;
    drawRows();
    $("more").disabled = !state.next; $("first").disabled = state.page === 0;
    const csv = "/console/api/orders/export.csv?" + new URLSearchParams({ filter: JSON.stringify(cleanFilter(state.filter)), sort: state.sort });
    // the workbook's times are on the reader's clock (Excel's have no time zone), each row's
    // at its own date's offset
    $("export-csv").href = csv; $("export-xlsx").href = csv.replace("export.csv", "export.xlsx") + "&" + new URLSearchParams({ tz: OT.zone() });
  }
  function drawRows() {
    const body = document.querySelector("#orders tbody"); body.replaceChildren();
    $("empty").hidden = state.rows.length > 0;
    for (const order of state.rows) {
      const tr = el("tr", { "data-order": order.order_no });
      if (BOOT.canTag) {
        const box = el("input", { type: "checkbox", "aria-label": order.order_no });
        box.checked = state.selected.has(order.order_no);
        box.addEventListener("change", () => { box.checked ? state.selected.add(order.order_no) : state.selected.delete(order.order_no); drawBulk(); tr.classList.toggle("selected", box.checked); });
        tr.append(el("td", { class: "sel" }, box));
      }
      tr.append(el("td", {}, el("a", { href: `/console/orders/${encodeURIComponent(order.order_no)}`, text: order.order_no })));
      const customer = el("td", { class: "cust", text: order.customer_name || order.customer_id });
      if (order.customer_name) customer.append(el("div", { class: "muted", text: order.customer_id }));
      tr.append(customer);
      tr.append(el("td", { text: OT.status(order.status) }));
      tr.append(el("td", { class: "num", text: OT.money(order.amount, order.currency) }));
      tr.append(el("td", { text: OT.region(order.region) }));
      tr.append(el("td", { class: "hide-sm", text: OT.when(order.created_at) }));
      tr.append(el("td", { class: "tagcol" }, ...order.tag_names.map((n) => OT.badge(n))));
      body.append(tr);
    }
    drawBulk();
  }
  function drawBulk() {
    const bar = $("bulkbar"); if (!bar) return;
    const all = $("select-filter").checked;
    const none = !all && state.selected.size === 0;
    $("bulk-add").disabled = none; $("bulk-remove").disabled = none;
    $("bulk-count").textContent = all ? t("bulk.all_matching") : t("bulk.selected", { n: state.selected.size });
    $("select-filter-label").textContent = t("bulk.select_filter");
    $("select-page").checked = state.rows.length > 0 && state.rows.every((r) => state.selected.has(r.order_no));
  }

  async function ensureTag(name) {
    if (OT.catalog.some((x) => x.name === name)) return;
    if (!BOOT.canAdmin) throw new Error(t("bulk.unknown_tag", { tag: name }));
    await api("/tags", { method: "POST", body: { name, colour: "#1677ff", description: t("bulk.created_here") } });
    await reloadTags();
  }
  // the pickers afresh: a tag just made, or a free tag now in use (GET /tags lists those where
  // free tags are allowed), is offered by the filter and the batch bar
  async function reloadTags() {
    OT.catalog = null; await OT.loadCatalog();
    OT.fillTagSelect($("f-tag"), { empty: t("filter.any") });
    OT.fillTagSelect($("bulk-tag"), { empty: t("bulk.choose_tag"), forChanging: true });
  }
  function ask(text) {
    const dialog = $("confirm");
    $("confirm-text").textContent = text; $("job-result").textContent = ""; $("job-progress").hidden = true;
    $("confirm-ok").hidden = false; $("confirm-cancel").textContent = t("common.cancel");
    dialog.showModal();
    return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
  }
  function report(text, bad) {
    const dialog = $("confirm");
    $("job-result").textContent = text; $("job-result").className = bad ? "error" : "";
    $("confirm-ok").hidden = true; $("confirm-cancel").textContent = t("common.close");
    if (!dialog.open) dialog.showModal();
  }
  async function bulk(action) {
    // a typed name: with free tags allowed, as the Tag API reads it (NFKC) and added as it is
    const typed = BOOT.freeTags ? OT.tagName($("bulk-new").value) : $("bulk-new").value.trim();
    const name = typed || $("bulk-tag").value;
    const reason = $("bulk-reason").value.trim() || t("bulk.default_reason");
    OT.clearProblems($("bulk-error"), $("bulkbar"));
    // nothing is picked until someone picks: never a tag by default on thousands of orders
    if (!name) { OT.showProblems($("bulk-error"), new Error(t("bulk.pick_tag"))); $("bulk-tag").focus(); return; }
    // a typed name the Tag API would refuse, before anything is sent: without free tags, one
    // the rules name (category:xyz) is not first made a catalog tag the add is then refused
    const problem = typed && action === "add" ? (BOOT.freeTags ? OT.freeTagProblem(typed) : OT.rulesNameIt(OT.tagName(typed))) : null;
    if (problem) { OT.showProblems($("bulk-error"), OT.nameProblem(problem), $("bulkbar")); $("bulk-new").focus(); return; }
    const change = action === "add" ? { add: [name], remove: [] } : { add: [], remove: [name] };
    try {
      // without free tags, a new name is first made a catalog tag (by an admin only)
      if (action === "add" && !BOOT.freeTags) await ensureTag(name);
      if ($("select-filter").checked) {
        const filter = cleanFilter(state.filter);
        const dry = await api("/tags/by-filter", { method: "POST", body: { filter, ...change, reason } });
        if (!(await ask(t(`bulk.confirm_${action}`, { n: dry.would_touch, tag: OT.tagLabel(name) })))) return;
        const started = await api("/tags/by-filter", { method: "POST", body: { filter, ...change, reason, confirm_count: dry.would_touch } });
        const bar = $("job-progress"); bar.hidden = false; $("confirm").showModal(); $("confirm-ok").hidden = true;
        const job = await OT.watchJob(started.job_id, (j) => {
          bar.firstElementChild.style.width = `${j.total ? Math.round((100 * j.processed) / j.total) : 100}%`;
          $("job-result").textContent = t("bulk.progress", { done: j.processed, total: j.total });
        });
        report(job.status === "done" ? t("bulk.done", { n: job.changed, total: job.processed }) : t("bulk.failed", { error: job.error || job.status }), job.status !== "done");
      } else {
        const orderNos = [...state.selected];
        if (!(await ask(t(`bulk.confirm_${action}`, { n: orderNos.length, tag: OT.tagLabel(name) })))) return;
        const result = await api("/tags/bulk", { method: "POST", body: { order_nos: orderNos, ...change, reason } });
        const refused = Object.entries(result.outcomes).filter(([, o]) => o.startsWith("refused"));
        const why = refused.length ? OT.reworded(refused[0][1].replace(/^refused: /, "")) : "";
        report(t("bulk.done", { n: result.changed, total: orderNos.length }) + (refused.length ? " " + t("bulk.refused", { n: refused.length, why }) : ""), refused.length > 0);
      }
      $("bulk-new").value = "";
      if (BOOT.freeTags && typed && action === "add") await reloadTags();
      await load(); loadViews();
    } catch (e) {
      // a job that failed reports in its dialog; anything before the question, beside the bar
      if ($("confirm").open) report(e.message, true);
      else OT.showProblems($("bulk-error"), e, $("bulkbar"));
    }
  }

  async function loadViews() {
    const box = $("views"); box.replaceChildren();
    const tab = (label, count, selected, onclick, id) => {
      const button = el("button", { type: "button", role: "tab", "aria-selected": selected ? "true" : "false", "data-view": id || "", onclick }, label);
      if (count !== null) button.append(el("span", { class: "count", text: String(count) }));
      return button;
    };
    box.append(tab(t("views.all"), null, !state.view, () => { state.view = null; state.filter = EMPTY(); writeForm(); reload(); loadViews(); }));
    let views = [];
    try { views = await api("/console/api/views"); } catch (e) { OT.toast(e.message, true); }
    for (const view of views) {
      const button = tab(view.name, view.count, state.view === view.view_id, () => {
        state.view = view.view_id; state.filter = { ...EMPTY(), ...view.filter }; state.sort = view.sort; writeForm(); reload(); loadViews();
      }, view.view_id);
      if (BOOT.canTag) button.append(el("span", { class: "del", role: "button", tabindex: "0", "aria-label": t("views.delete") + " " + view.name, text: "×", onclick: async (e) => {
        e.stopPropagation(); if (!confirm(t("views.confirm_delete", { name: view.name }))) return;
        await api(`/console/api/views/${view.view_id}`, { method: "DELETE" }); if (state.view === view.view_id) state.view = null; loadViews();
      } }));
      box.append(button);
    }
  }

  async function start() {
    await OT.loadCatalog();
    OT.fillTagSelect($("f-tag"), { empty: t("filter.any") });
    for (const [value, label] of Object.entries(BOOT.labels.statuses)) $("f-status").append(el("option", { value, text: label }));
    for (const [value, label] of Object.entries(BOOT.labels.regions)) $("f-region").append(el("option", { value, text: label }));
    const params = new URLSearchParams(location.search);
    try { state.filter = { ...EMPTY(), ...JSON.parse(params.get("f") || "{}") }; } catch { state.filter = EMPTY(); }
    state.sort = params.get("sort") || "-created_at"; state.view = params.get("view");
    writeForm();
    $("f-tag").addEventListener("change", () => {
      const name = $("f-tag").value, mode = $("f-mode").value; if (!name) return;
      for (const m of ["all_tags", "any_tags", "none_tags"]) state.filter[m] = state.filter[m].filter((x) => x !== name);
      state.filter[mode].push(name); $("f-tag").value = ""; drawPicked(); readForm(); reload();
    });
    $("filters").addEventListener("submit", (e) => { e.preventDefault(); readForm(); reload(); });
    $("f-sort").addEventListener("change", () => { readForm(); reload(); });
    $("reset").addEventListener("click", () => { state.filter = EMPTY(); state.view = null; writeForm(); reload(); loadViews(); });
    $("more").addEventListener("click", () => { if (!state.next) return; state.cursors[state.page + 1] = state.next; state.page += 1; load(); });
    $("first").addEventListener("click", () => { state.page = 0; load(); });
    if (BOOT.canTag) {
      OT.fillTagSelect($("bulk-tag"), { empty: t("bulk.choose_tag"), forChanging: true });
      $("select-page").addEventListener("change", (e) => { for (const r of state.rows) e.target.checked ? state.selected.add(r.order_no) : state.selected.delete(r.order_no); drawRows(); });
      $("select-filter").addEventListener("change", drawBulk);
      $("bulk-add").addEventListener("click", () => bulk("add"));
      $("bulk-remove").addEventListener("click", () => bulk("remove"));
      $("save-view").addEventListener("click", async () => {
        readForm();
        const name = prompt(t("views.name_prompt")); if (!name) return;
        try { const view = await api("/console/api/views", { method: "POST", body: { name, filter: cleanFilter(state.filter), sort: state.sort } }); state.view = view.view_id; await loadViews(); OT.toast(t("views.saved", { name })); }
        catch (e) { OT.toast(e.message, true); }
      });
    }
    loadViews();
    await load();
  }
  start();
})();
