// Tags: the catalog with usage, labels and permissions, create / edit / deactivate, rename and
// merge as jobs, the likely-duplicates and unused reviews.
"use strict";
(() => {
  const { t, api, el } = OT;
  const $ = (id) => document.getElementById(id);

  async function runJob(started, title) {
    const dialog = $("job"); $("job-text").textContent = title; dialog.showModal();
    const bar = $("job-bar").firstElementChild;
    const job = await OT.watchJob(started.job_id, (j) => {
      bar.style.width = `${j.total ? Math.round((100 * j.processed) / j.total) : 100}%`;
      $("job-text").textContent = `${title} — ${t("bulk.progress", { done: j.processed, total: j.total })}`;
    });
    $("job-text").textContent = job.status === "done" ? `${title} — ${t("bulk.done", { n: job.changed, total: job.processed })}` : t("bulk.failed", { error: job.error || job.status });
    await draw(true);  // the counts moved: not the kept ones
  }
  async function act(fn) { try { await fn(); } catch (e) { OT.toast(e.message, true); } }
  // a name or label (`what`) that nearly equals an existing tag's is refused (409 naming it):
  // ask, then send again confirmed; declined, the refusal stands
  async function confirmed(path, options, what) {
    try { return await api(path, options); } catch (e) {
      if (e.status !== 409 || !/nearly equals/.test(e.detail)) throw e;
      if (!confirm(t("tags.duplicate_confirm", { name: what, tags: OT.nearDuplicates(e.detail).join(t("common.and")) }))) throw e;
      return api(path, { ...options, body: { ...options.body, confirm_duplicate: true } });
    }
  }
  const labelsOf = (zh, en) => Object.fromEntries([["zh-CN", zh.trim()], ["en", en.trim()]].filter(([, v]) => v));
  // admins always may (services/tagger/governance.py), whether the list names them or not
  const roles = (list) => [...new Set([...list, "admin"])].map((r) => t(`role.${r}`)).join(" / ");

  const RULES = JSON.parse(document.getElementById("rule-tags").textContent);
  // named by the rules from the data (status:pending): no person's change may put it on orders
  const namedByRules = (name) => RULES.prefixes.some((p) => p && name.startsWith(p));
  const byRules = (name) => RULES.tags.includes(name) || namedByRules(name);

  // fresh: count the orders and customers now (the Tag API keeps its counts for a while)
  async function draw(fresh = false) {
    const catalog = OT.catalog = await api(fresh ? "/tags?fresh=true" : "/tags");  // with its usage
    const counted = catalog.length ? catalog[0].counted_at : null;
    $("usage-at").dataset.countedAt = counted || "";
    $("usage-at").textContent = counted ? t("tags.counted_at", { when: OT.when(counted) }) : "";
    const body = document.querySelector("#catalog tbody"); body.replaceChildren();
    // free tags in use (stored nowhere, named by no rule) are listed for the pickers, not here
    for (const tag of catalog.filter((t) => t.in_catalog !== false || t.named_by_rules)) {
      const tr = el("tr", { "data-tag": tag.name, class: tag.active ? "" : "muted" });
      tr.append(el("td", {}, OT.badge(tag.name), el("div", { class: "muted", text: tag.name })));
      tr.append(el("td", { text: OT.family(tag.family) }));
      tr.append(el("td", { class: "cust", text: OT.label("descriptions", tag.description) }));
      const p = tag.permissions;
      // a tag the rules name from a fact (status:pending) is set by them alone, labelled
      // (stored) or not (free tags allowed: none may take its name either, manual.check_tags)
      const may = tag.named_by_rules ? t(BOOT.freeTagsAllowed ? "tags.rules_only_free" : "tags.rules_only") : `${t("tags.may_add", { roles: roles(p.add) })} · ${t("tags.may_remove", { roles: roles(p.remove) })}` + (p.remove_rule_given ? "" : ` · ${t("tags.rule_given_kept")}`);
      tr.append(el("td", { class: "perm", text: may }));
      // orders and customers carrying it (customer rules' tags sit on customers, not orders)
      // (a tag only customer rules give counts no orders: "0 orders" would read as unused)
      const usage = el("td", { class: "num usage" });
      if (!tag.on_customers || tag.orders) usage.append(el("a", { "data-use": "orders", href: "/console/?" + new URLSearchParams({ f: JSON.stringify({ all_tags: [tag.name] }) }), text: t("tags.n_orders", { n: tag.orders }) }));
      if (tag.customers || tag.on_customers) usage.append(...(usage.childElementCount ? [el("br")] : []), el("a", { "data-use": "customers", href: "/console/customers?" + new URLSearchParams({ all_tags: tag.name }), text: t("tags.n_customers", { n: tag.customers }) }));
      tr.append(usage);
      tr.append(el("td", { text: tag.active ? t("tags.active") : t("tags.inactive") }));
      if (BOOT.canAdmin) {
        const colour = el("input", { type: "color", value: tag.colour, "aria-label": t("tags.colour") + " " + tag.name });
        colour.addEventListener("change", () => act(async () => { await api(`/tags/${encodeURIComponent(tag.name)}`, { method: "PATCH", body: { colour: colour.value } }); await draw(); }));
        const cell = el("td", { class: "row" }, colour,
          el("button", { class: "btn small", type: "button", text: t("tags.edit"), onclick: () => act(async () => {
            const description = prompt(t("tags.description"), tag.description); if (description === null) return;
            await api(`/tags/${encodeURIComponent(tag.name)}`, { method: "PATCH", body: { description } }); await draw(); }) }),
          el("button", { class: "btn small", type: "button", text: t("tags.edit_labels"), "data-action": "labels", onclick: () => act(async () => {
            const zh = prompt(t("tags.label_zh"), (tag.labels || {})["zh-CN"] || ""); if (zh === null) return;
            const en = prompt(t("tags.label_en"), (tag.labels || {}).en || ""); if (en === null) return;
            const labels = labelsOf(zh, en);
            await confirmed(`/tags/${encodeURIComponent(tag.name)}`, { method: "PATCH", body: { labels } }, Object.values(labels).join(" / ")); await draw(); }) }),
          el("button", { class: "btn small", type: "button", text: tag.active ? t("tags.deactivate") : t("tags.activate"), onclick: () => act(async () => {
            await api(`/tags/${encodeURIComponent(tag.name)}`, { method: "PATCH", body: { active: !tag.active } }); await draw(); }) }),
          byRules(tag.name) ? el("span", { class: "pill", title: t("tags.by_rules_hint"), text: t("tags.by_rules") }) : null,
          byRules(tag.name) ? null : el("button", { class: "btn small", type: "button", text: t("tags.rename"), "data-action": "rename", onclick: () => act(async () => {
            const name = prompt(t("tags.rename_prompt", { tag: tag.name })); if (!name) return;
            await runJob(await confirmed(`/tags/${encodeURIComponent(tag.name)}/rename`, { method: "POST", body: { new_name: name.trim() } }, name.trim()), t("tags.renaming", { from: tag.name, to: name })); }) }),
          byRules(tag.name) ? null : el("button", { class: "btn small", type: "button", text: t("tags.merge"), onclick: () => act(async () => {
            const into = prompt(t("tags.merge_prompt", { tag: tag.name })); if (!into) return;
            await runJob(await api(`/tags/${encodeURIComponent(tag.name)}/merge`, { method: "POST", body: { into: into.trim() } }), t("tags.merging", { from: tag.name, to: into })); }) }));
        tr.append(cell);
      }
      body.append(tr);
    }
  }
  async function duplicates() {
    const pairs = await api("/tags/duplicates");
    const box = $("duplicates"); box.replaceChildren();
    if (!pairs.length) box.append(el("li", { class: "muted", text: t("tags.none_duplicates") }));
    for (const pair of pairs) {
      const [a, b] = pair.tags;
      const li = el("li", { "data-pair": `${a}|${b}` }, OT.badge(a), el("span", { text: " ≈ " }), OT.badge(b), el("div", { class: "muted", text: pair.why }));
      if (BOOT.canAdmin) for (const [from, into] of [[a, b], [b, a]]) {
        if (byRules(from)) continue;  // the rules give it: merging it away is refused
        if (namedByRules(into)) continue;  // the rules alone set it: merging into it is refused
        li.append(el("button", { class: "btn small", type: "button", text: t("tags.merge_into", { from: OT.tagLabel(from), to: OT.tagLabel(into) }), onclick: () => act(async () => {
          if (!confirm(t("tags.merge_into", { from, to: into }) + "?")) return;
          await runJob(await api(`/tags/${encodeURIComponent(from)}/merge`, { method: "POST", body: { into } }), t("tags.merging", { from, to: into }));
          await duplicates(); }) }));
      }
      box.append(li);
    }
  }
  async function unused() {
    const days = Number($("u-days").value) || 90;
    const result = await api(`/tags/unused?days=${days}`);
    const box = $("unused"); box.replaceChildren();
    if (!result.unused.length) box.append(el("li", { class: "muted", text: t("tags.none_unused") }));
    for (const name of result.unused) box.append(el("li", {}, OT.badge(name)));
  }
  // a new tag; what is wrong with it shows beside the form, on the fields it names
  async function create() {
    const form = $("create"), box = $("c-error");
    OT.clearProblems(box, form);
    const name = $("c-name").value.trim();
    if (!name) {
      const missing = new Error(t("problem.of_field", { field: t("field.tag_name"), problem: t("problem.required") }));
      OT.showProblems(box, Object.assign(missing, { problems: [{ field: "name" }] }), form);
      $("c-name").focus();
      return;
    }
    const labels = labelsOf($("c-label-zh").value, $("c-label-en").value);
    try {
      await confirmed("/tags", { method: "POST", body: { name, labels, description: $("c-desc").value.trim(), colour: $("c-colour").value } }, name);
    } catch (e) { OT.showProblems(box, e, form); return; }
    $("c-name").value = ""; $("c-desc").value = ""; $("c-label-zh").value = ""; $("c-label-en").value = "";
    OT.toast(t("tags.created", { tag: name }));
    await act(async () => { await draw(); await duplicates(); await unused(); });
  }
  async function start() {
    if (BOOT.canAdmin) $("create").addEventListener("submit", (e) => { e.preventDefault(); create(); });
    $("u-days").addEventListener("change", () => act(unused));
    $("recount").addEventListener("click", () => act(() => draw(true)));
    await draw(); await duplicates(); await unused();
  }
  start();
})();
