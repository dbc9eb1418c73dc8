// Rules page: the rules in force, rule-set versions, a version's diff against the active one (a
// job: progress, then the report kept with the version), the shadow run, and (admin) activate /
// roll back with a backfill whose progress is shown. Text only, never HTML.
"use strict";
(() => {
  const { t, api, el } = OT;
  const $ = (id) => document.getElementById(id);
  const canAdmin = OT.boot.canAdmin;
  let state = { active: null, shadow: null, versions: [] };

  function stateOf(v) {
    if (state.active && v.version === state.active.version) return ["active", t("rv.state_active")];
    if (v.version === state.shadow) return ["shadow", t("rv.state_shadow")];
    if (v.first_active_at) return ["earlier", t("rv.state_earlier")];
    return ["candidate", t("rv.state_candidate")];
  }

  function lastDiff(v) {
    const d = v.last_diff;
    if (!d) return el("td", { class: "muted", text: "—" });
    const text = d.status === "done"
      ? t("rv.diff_kept", { changed: d.orders_changed, compared: d.orders_compared })
      : t("rv.job_" + d.status);
    return el("td", {}, el("button", { class: "btn small link", type: "button", "data-action": "show-diff",
      "data-job": d.job_id, onclick: () => followDiff(d.job_id, v.version), text }));
  }

  function actions(v, kind) {
    if (!canAdmin || kind === "active") return el("td");
    const back = kind === "earlier";
    return el("td", {},
      el("button", { class: "btn small", type: "button", "data-action": "diff", onclick: () => showDiff(v.version), text: t("rv.diff") }),
      " ",
      el("button", { class: "btn small " + (back ? "danger" : "primary"), type: "button", "data-action": back ? "rollback" : "activate",
        onclick: () => askActivate(v.version, back), text: back ? t("rv.rollback") : t("rv.activate") }));
  }

  async function load() {
    const [versions, active, shadow] = await Promise.all([api("/rules/versions?limit=50"), api("/rules/active"), api("/rules/shadow")]);
    // the tagger records a version loaded from the rule file as "loaded from <file>": the
    // reader's words for it; a person's own comment stays as written
    const comment = (text) => { const m = /^loaded from (\S+)$/.exec(text || ""); return m ? t("rv.loaded_from", { file: m[1] }) : text; };
    state = { active: active.active, shadow: versions.shadow, versions: versions.versions };
    const line = $("rv-active");
    line.dataset.version = active.active ? active.active.version : "";
    line.textContent = active.active
      ? t("rv.active_line", { version: active.active.version, since: OT.when(active.active.since), by: active.active.by, previous: active.active.previous || "—" })
      : t("rv.none_active");
    $("versions").querySelector("tbody").replaceChildren(...state.versions.map((v) => {
      const [kind, label] = stateOf(v);
      return el("tr", { "data-version": v.version, "data-state": kind },
        el("td", {}, el("code", { text: v.version })),
        el("td", {}, el("span", { class: "tag state-" + kind, text: label })),
        el("td", { class: "num", text: String(v.rules) }),
        el("td", { text: OT.when(v.last_active_at) || "—" }),
        el("td", { text: v.by }),
        el("td", { class: "wrap muted", text: comment(v.comment) }),
        lastDiff(v),
        canAdmin ? actions(v, kind) : null);
    }));
    showShadow(shadow);
    if (active.active && $("rules").dataset.version !== active.active.version) await showRules(active.active.version);
    if (active.running_backfill) follow(active.running_backfill);
    const running = state.versions.find((v) => v.last_diff && v.last_diff.status === "running");
    if (running && !diffing) followDiff(running.last_diff.job_id, running.version);
  }

  // the rules in force: after an activation or a rollback the page shows the new version's rules
  // at once (the server rendered the ones its process had then)
  async function showRules(version) {
    // the hits as the new version's backfill left them, not the counts kept from before
    const table = await api(`/console/api/rules/table/${encodeURIComponent(version)}?fresh=true`);
    $("rules").querySelector("tbody").replaceChildren(...table.rules.map((r) => el("tr", { "data-rule": r.id },
      el("td", {}, el("code", { text: r.id }), " ", el("span", { class: "muted", text: "v" + r.version })),
      el("td", { class: "rule-tag", text: r.tag_label }), el("td", { class: "wrap", text: r.when }),
      el("td", { class: "wrap", text: r.holds_while }), el("td", { class: "muted wrap", text: r.reason }),
      el("td", { class: "num", text: String(r.hits) }))));
    const customerRows = (table.customer_rules || []).map((r) => el("tr", { "data-rule": r.id },
      el("td", {}, el("code", { text: r.id }), " ", el("span", { class: "muted", text: "v" + r.version })),
      el("td", { class: "rule-tag", text: r.tag_label }), el("td", { text: r.each }), el("td", { class: "wrap", text: r.when }),
      el("td", { class: "muted wrap", text: r.reason }), el("td", { class: "num", text: String(r.customers) })));
    $("customer-rules").querySelector("tbody").replaceChildren(...(customerRows.length ? customerRows
      : [el("tr", {}, el("td", { colspan: "6", class: "muted", text: t("rules.no_customer_rules") }))]));
    $("rules").dataset.version = table.version;
  }

  function showShadow(s) {
    $("rs-summary").textContent = s.version
      ? t("rv.shadow_line", { version: s.version, since: OT.when(s.since), changed: s.orders_changed, compared: s.orders_compared })
      : t("rv.shadow_none");
    $("shadow-diffs").querySelector("tbody").replaceChildren(...s.differences.map((d) =>
      el("tr", {}, el("td", {}, OT.badge(d.tag)), el("td", { text: t("rv." + d.change + "_word") }),
        el("td", {}, el("code", { text: d.rule_id })), el("td", { class: "num", text: String(d.orders) }))));
    // no shadow run, or none that changed a tag: the summary says so, no empty table
    $("shadow-diffs").hidden = s.differences.length === 0;
  }

  // a diff is a job: start it, then follow its progress and its report so far until it is done
  async function showDiff(version) {
    $("rule-diff").hidden = false;
    $("rd-summary").textContent = t("rv.diffing", { version });
    try {
      const started = await api(`/rules/versions/${encodeURIComponent(version)}/diff`, { method: "POST" });
      await followDiff(started.job_id, version);
    } catch (error) { $("rd-summary").textContent = error.message; OT.toast(error.message, true); }
  }

  let diffing = null;
  async function followDiff(jobId, version) {
    diffing = jobId;
    const card = $("rule-diff"), bar = $("rd-progress"), line = $("rd-summary");
    card.hidden = false; bar.hidden = false; $("rd-csv").hidden = true;
    card.dataset.job = jobId; delete card.dataset.status;
    for (;;) {
      const job = await api(`/rules/diffs/${encodeURIComponent(jobId)}`);
      if (diffing !== jobId) return;  // another diff is shown now
      bar.firstElementChild.style.width = (job.total ? (100 * job.processed) / job.total : 100) + "%";
      showReport(job.tags);
      if (job.status === "running") {
        line.textContent = t("rv.diff_progress", { version, processed: job.processed, total: job.total, changed: job.orders_changed });
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      line.textContent = job.status === "done"
        ? t("rv.diff_line", { version, active: job.active, compared: job.processed, changed: job.orders_changed, seconds: job.seconds })
        : t("rv.diff_failed", { version, error: job.error || "" });
      card.dataset.status = job.status;
      bar.hidden = job.status === "done";
      // every changed order, one row each (UTF-8 with BOM: Excel opens the Chinese correctly)
      const csv = $("rd-csv");
      csv.hidden = job.status !== "done" || !job.changes_csv;
      if (!csv.hidden) csv.href = job.changes_csv;
      await load();  // the version's row shows the diff it now keeps
      return;
    }
  }

  function showReport(tags) {
    $("diff-tags").querySelector("tbody").replaceChildren(...tags.map((row) => el("tr", { "data-tag": row.tag },
      el("td", {}, OT.badge(row.tag)), el("td", { class: "num gained", text: "+" + row.gained }), el("td", { class: "num lost", text: "−" + row.lost }),
      el("td", { class: "wrap" }, ...[...row.gained_examples.map((n) => "+" + n), ...row.lost_examples.map((n) => "−" + n)]
        .map((text) => el("a", { href: "/console/orders/" + encodeURIComponent(text.slice(1)), class: "example", text: text + " " }))))));
  }

  function askActivate(version, back) {
    const dialog = $("activate-dialog");
    $("ad-title").textContent = back ? t("rv.rollback_title") : t("rv.activate_title");
    $("ad-what").textContent = t("rv.activate_what", { version, active: state.active ? state.active.version : "—" });
    dialog.dataset.version = version; dialog.dataset.back = back ? "1" : "";
    dialog.showModal();
  }

  async function confirmActivate() {
    const dialog = $("activate-dialog");
    const since = Number($("ad-since").value) || null;
    const body = { version: dialog.dataset.version, alert_new_tags: $("ad-alert").checked,
      backfill: $("ad-backfill").checked ? (since ? { since_days: since } : {}) : null };
    try {
      const done = await api(dialog.dataset.back ? "/rules/rollback" : "/rules/active", { method: dialog.dataset.back ? "POST" : "PUT", body });
      OT.toast(t("rv.activated", { version: done.version }));
      await load();
      if (done.job_id) follow(done.job_id);
    } catch (error) { OT.toast(error.message, true); }
  }

  let following = null;
  async function follow(jobId) {
    if (following === jobId) return;
    following = jobId;
    const bar = $("rv-progress"), line = $("rv-job");
    bar.hidden = false; line.hidden = false;
    line.dataset.job = jobId; delete line.dataset.status;
    const job = await OT.watchJob(jobId, (j) => {
      bar.firstElementChild.style.width = (j.total ? (100 * j.processed) / j.total : 100) + "%";
      line.textContent = t("rv.job_line", { job: jobId, processed: j.processed, total: j.total, changed: j.changed, status: t("rv.job_" + j.status) });
    });
    line.dataset.status = job.status;
    following = null;
  }

  if (canAdmin) {
    $("activate-form").addEventListener("submit", (event) => {
      if (event.submitter && event.submitter.value === "confirm") confirmActivate();
    });
  }
  load().catch((error) => OT.toast(error.message, true));
})();
