// Shared by every console page: messages and labels, calls to the Tag API with the session's
// CSRF token, tag badges. Values from orders are only ever set as text, never as HTML.
"use strict";
const BOOT = JSON.parse(document.getElementById("boot").textContent);
const OT = {
  boot: BOOT,
  t(key, values) {
    // a count's plural form where the language has one ("bulk.selected_one": 1 order selected)
    if (values && values.n !== undefined) {
      const form = `${key}_${new Intl.PluralRules(BOOT.lang).select(Number(values.n))}`;
      if (BOOT.messages[form] !== undefined) key = form;
    }
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
  // tags as pickers and filters list them: by their labels, and a tag's name too only where
  // another listed tag reads the same (i18n.tag_options on the server)
  tagOptions(names) {
    const labels = new Map(names.map((name) => [name, OT.tagLabel(name)]));
    const seen = new Map();
    for (const text of labels.values()) seen.set(text, (seen.get(text) || 0) + 1);
    return new Map([...labels].map(([name, text]) => [name, seen.get(text) === 1 || text === name ? text : `${text} (${name})`]));
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
    let response;
    try {
      response = await fetch(path, {
        ...options, headers, credentials: "same-origin",
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
    } catch { throw OT.failure(0, null); }  // no answer at all: offline, or the server is down
    if (response.status === 401) { location.href = "/console/login?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("signed out"); }
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    if (!response.ok) throw OT.failure(response.status, data);
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
  // a tag picker over orders; `empty` is the first choice's words (nothing picked yet)
  // forAdding: only tags the reader may add by hand (OT.mayAdd); forChanging: those the reader
  // may add or remove (the batch bar does both); held: names not offered (the tags an order
  // carries already)
  fillTagSelect(select, { empty = null, forAdding = false, forChanging = false, held = new Set() } = {}) {
    const chosen = select.value;
    select.replaceChildren();
    if (empty !== null) select.append(OT.el("option", { value: "", text: empty }));
    // every picker is over orders: a tag only customer rules give sits on no order; in the
    // order of the words people read (紧急 among the 'j's in Chinese, not after the 'v' of vip)
    const listed = [...(OT.catalog || [])].sort((a, b) => OT.tagLabel(a.name).localeCompare(OT.tagLabel(b.name), BOOT.lang));
    // the batch bar adds or removes: a tag the rules name from a fact (named_by_rules, stored
    // or not) is on orders as the rules gave it, a catalog tag possibly by hand (the API decides)
    const changeable = (tag) => OT.mayAdd(tag) || OT.mayRemove(tag.name, tag.named_by_rules ? "rule" : "manual");
    const offered = listed.filter((tag) => !((forAdding && !OT.mayAdd(tag)) || (forChanging && !changeable(tag)) || tag.on_customers || held.has(tag.name)));
    const texts = OT.tagOptions(offered.map((tag) => tag.name));
    for (const tag of offered) {
      const option = OT.el("option", { value: tag.name, text: texts.get(tag.name), title: tag.name });
      option.style.color = tag.colour;
      select.append(option);
    }
    if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
  },
  // whether the reader may add the listed tag by hand, as the Tag API decides it: an active
  // tag the catalog stores, or a free tag in use where free tags are allowed (a listed one
  // the catalog does not store is either that or the rules'), not one the rules name from a
  // fact (status:pending, labelled or not: GET /tags's named_by_rules, manual.check_tags),
  // whose roles hold the reader's (admins always may)
  mayAdd(tag) {
    return BOOT.canTag && tag.active && (tag.in_catalog !== false || BOOT.freeTagsAllowed) && !tag.named_by_rules && (BOOT.role === "admin" || tag.permissions.add.includes(BOOT.role));
  },
  // whether the reader may remove the tag by hand, as the Tag API decides it: the catalog's
  // roles (admins always may), and a tag a rule gave only where the catalog lets people
  mayRemove(name, source) {
    if (!BOOT.canTag) return false;
    const entry = (OT.catalog || []).find((t) => t.name === name);
    // not in the catalog listing (a retired rule's tag): a rule's tag is not offered
    // (remove_rule_given is false by default; where the family it carries allows it, the Tag
    // API would still take the removal), a person's is offered and the API decides
    if (!entry || !entry.permissions) return source !== "rule";
    const p = entry.permissions;
    return (BOOT.role === "admin" || p.remove.includes(BOOT.role)) && (source !== "rule" || p.remove_rule_given);
  },
  // a typed tag name as the Tag API reads it: NFKC (full-width ｖｉｐ is vip), no spaces around
  tagName(text) { return (text || "").normalize("NFKC").trim(); },
  // why the Tag API refuses a name by hand, free tags or not, in its words: a prefix only the
  // rules name tags under (status:, category:; BOOT.rulePrefixes, set where the reader may
  // tag; manual.check_tags), stored in the catalog or not. null where none applies
  rulesNameIt(name) {
    const prefix = (BOOT.rulePrefixes || []).find((p) => name.startsWith(p));
    return prefix ? OT.t("problem.rules_name_it", { tag: name, prefix }) : null;
  },
  // why the Tag API would refuse a typed name as a free tag (BOOT.freeTags: set only where
  // ORDERTAG_TAGGER_ALLOW_FREE_TAGS is on and the reader may tag), null where it would take it:
  // a prefix only the rules name tags under (OT.rulesNameIt); the tag-name rule; a family its
  // name names whose tags the reader's role may not add (governance.refusal). Another name
  // the catalog stores is a catalog tag: the API judges it.
  freeTagProblem(name) {
    const free = BOOT.freeTags;
    const ruled = OT.rulesNameIt(name);
    if (ruled) return ruled;
    if ((OT.catalog || []).some((tag) => tag.name === name && tag.in_catalog !== false)) return null;
    if (!new RegExp(free.pattern).test(name)) return OT.t("problem.of_field", { field: OT.t("field.tag_name"), problem: OT.t("problem.tag_name") });
    const colon = name.indexOf(":"), family = name.slice(0, colon);
    const allowed = colon > 0 && colon < name.length - 1 && Object.hasOwn(free.closedFamilies, family) ? free.closedFamilies[family] : null;
    if (allowed) return OT.t("problem.may_not_add", { tag: name, roles: allowed.map((r) => OT.t(`role.${r}`)).join(" / ") });
    return null;
  },
  // the Error a refused name is shown as (OT.showProblems marks the inputs sending `field`)
  nameProblem(text, field = "add") { return Object.assign(new Error(text), { problems: [{ field, text }] }); },
  // an alert's kind in the reader's words (a kind without its own words by its tag's label)
  alertKind(kind) { const key = `alerts.kind.${kind}`; const text = OT.t(key); return text === key ? OT.tagLabel(kind) : text; },
  // an alert's cause, "紧急 · 警告（VIP 或高价值客户的紧急订单）：加急快递配送 → 紧急", on the support
  // page and the console's alike, from services/notifier/reasons.py readable_causes: `why` is
  // the routing rule's words in the reader's language, else its own (null: the route's default
  // severity, worded here)
  alertCause(cause) {
    const level = OT.word("alerts.severity.", cause.severity);
    const severity = cause.why === null ? OT.t("alerts.severity_default", { severity: level })
      : cause.why ? OT.t("alerts.severity_why", { severity: level, why: cause.why }) : level;
    const head = `${OT.alertKind(cause.kind)} · ${severity}`;
    return cause.tags.length ? OT.t("order.alert_cause", { cause: head, reasons: cause.tags.join(OT.t("common.separator")) }) : head;
  },
  // an alert's lines: its causes in the reader's words; an alert stored before causes were
  // kept (its `reasons` only) as the support page shows it
  alertWhy(alert) {
    const causes = alert.causes || [];
    return causes.length ? causes.map((c) => OT.alertCause(c)) : (alert.reasons || []);
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
  // where the reader is, for the server's times (exports, reports, day filters): the zone's
  // name, so each row gets its own date's offset (daylight saving); the offset now if the
  // browser names no zone
  zone() {
    const name = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (name) return name;
    const minutes = -new Date().getTimezoneOffset(), pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
    return `${minutes < 0 ? "-" : "+"}${pad(minutes / 60)}:${pad(minutes % 60)}`;
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
// ── errors in the reader's words ──────────────────────────────────────────────────────────
// The Tag API answers for developers, in English: a `detail`, and on bad input (422) each
// field with its problem (shared/http.py). People read them here, in their language, a field
// named by the label of the form field that sends it; an answer not known here is shown in the
// server's own words.
(() => {
  const { t } = OT;
  // the API's fields by their labels on the pages' forms
  const FIELD_LABELS = {
    amount_min: "filter.amount_min", amount_max: "filter.amount_max",
    created_from: "filter.created_from", created_to: "filter.created_to",
    customer_id: "filter.customer", status: "filter.status", region: "filter.region",
    spend_min: "customers.spend_min", spend_max: "customers.spend_max", orders_min: "customers.orders_min",
    last_order_from: "customers.last_order_from", last_order_to: "customers.last_order_to",
    name: "field.tag_name", new_name: "field.tag_name", into: "field.tag_name", tag: "field.tag_name",
    add: "field.tag_name", remove: "field.tag_name",
    all_tags: "filter.tag", any_tags: "filter.tag", none_tags: "filter.tag",
    reason: "field.reason", description: "tags.description", labels: "field.labels", colour: "tags.colour",
  };
  const AMOUNT_FIELDS = new Set(["amount_min", "amount_max", "spend_min", "spend_max"]);
  const TAG_FIELDS = new Set(["name", "new_name", "into", "tag", "add", "remove", "all_tags", "any_tags", "none_tags"]);
  const label = (field) => (FIELD_LABELS[field] ? t(FIELD_LABELS[field]) : null);
  const roles = (list) => list.split(", ").map((r) => t(`role.${r}`)).join(" / ");
  // "add.0" is the first tag added, "filter.amount_min" a filter's field: the field is the last name
  const fieldOf = (path) => (path || "").split(".").filter((p) => !/^\d+$/.test(p)).pop() || "";
  // a tag by its label, and by its name where that differs (a name taken, a near duplicate)
  const named = (name) => (OT.tagLabel(name) === name ? name : `${OT.tagLabel(name)} (${name})`);

  // whole sentences the Tag API says (in a field's problem or the detail): [pattern, words]
  const SENTENCES = [
    [/^(\w+) must not exceed (\w+)/, (m) => ({ field: m[1], text: t("problem.low_over_high", { low: label(m[1]) || m[1], high: label(m[2]) || m[2] }) })],
    [/^(\w+) must not be after (\w+)/, (m) => ({ field: m[1], text: t("problem.from_after_to", { from: label(m[1]) || m[1], to: label(m[2]) || m[2] }) })],
    [/^tag '(.+?)': the role '\w+' may not (add|remove) it by hand; needs one of: (.+?)(;|$)/, (m) => ({ field: m[2], text: t(`problem.may_not_${m[2]}`, { tag: OT.tagLabel(m[1]), roles: roles(m[3]) }) })],
    [/^tag '(.+?)' was given by rule (\S+) and the catalog does not let it be removed/, (m) => ({ field: "remove", text: t("problem.rule_tag_kept", { tag: OT.tagLabel(m[1]), rule: m[2] }) })],
    [/^tag '(.+?)' is one the rules name from the data \(prefix '(.+?)'\)/, (m) => ({ text: t("problem.rules_name_it", { tag: m[1], prefix: m[2] }) })],
    [/^(?:no )?tag '(.+?)' (?:is not )?in the catalog/, (m) => ({ text: t("problem.tag_unknown", { tag: m[1] }) })],
    [/^tag '(.+?)' is deactivated/, (m) => ({ text: t("problem.tag_inactive", { tag: OT.tagLabel(m[1]) }) })],
    [/^tag '(.+?)' exists/, (m) => ({ field: "name", text: t("problem.tag_exists", { tag: named(m[1]) }) })],
    [/^tag '(.+?)' was renamed to '(.+?)'/, (m) => ({ text: t("problem.tag_renamed", { tag: m[1], to: OT.tagLabel(m[2]) }) })],
    [/^tag '(.+?)' was merged into '(.+?)'/, (m) => ({ text: t("problem.tag_merged", { tag: m[1], to: OT.tagLabel(m[2]) }) })],
    [/would carry \d+ tags; at most (\d+)/, (m) => ({ text: t("problem.too_many_tags", { max: m[1] }) })],
    [/nearly equals the existing tag/, (m, said) => ({ field: "name", text: t("problem.near_duplicate", { tags: OT.nearDuplicates(said).join(t("common.and")) }) })],
    [/now matches (\d+) orders/, (m) => ({ text: t("problem.count_changed", { n: m[1] }) })],
    [/^rules give the tag '(.+?)'/, (m) => ({ text: t("problem.rule_tag", { tag: OT.tagLabel(m[1]) }) })],
    [/is (?:still|already) moving/, () => ({ text: t("problem.tag_moving") })],
    [/^'(.*?)' is neither a time zone name|does not know the time zone '(.*?)'/, (m) => ({ field: "tz", text: t("problem.tz", { zone: m[1] ?? m[2] }) })],
    [/^no order '(.+?)'/, (m) => ({ text: t("order.missing", { order: m[1] }) })],
    [/cursor/, () => ({ field: "cursor", text: t("problem.stale_page") })],
  ];
  // a field's problem as pydantic words it: [pattern, words]
  const PROBLEMS = [
    [/greater than or equal to (\S+)/, (m) => t("problem.at_least", { n: m[1] })],
    [/less than or equal to (\S+)/, (m) => t("problem.at_most", { n: m[1] })],
    [/at most (\d+) characters?/, (m) => t("problem.too_long", { n: m[1] })],
    [/at least 1 character|^Field required/, () => t("problem.required")],
    [/valid integer/, () => t("problem.whole_number")],
    [/valid (?:date|datetime)|isoformat/i, () => t("problem.date")],
    [/^Input should be '/, () => t("problem.choice")],
    [/should match pattern/, () => t("problem.format")],
  ];
  const BY_STATUS = { 0: "problem.offline", 403: "problem.forbidden", 413: "problem.too_large", 429: "problem.too_many_requests", 503: "problem.unavailable" };

  function sentence(said) {
    for (const [pattern, words] of SENTENCES) {
      const m = pattern.exec(said || "");
      if (m) return words(m, said);
    }
    return null;
  }
  // { field, text }: one field's problem, the field named by its label
  function problem(path, said) {
    const known = sentence(said);
    if (known) return { field: known.field || fieldOf(path), text: known.text };
    const field = fieldOf(path);
    let text = AMOUNT_FIELDS.has(field) ? t("problem.amount") : TAG_FIELDS.has(field) && /pattern/.test(said) ? t("problem.tag_name") : null;
    for (const [pattern, words] of PROBLEMS) {
      const m = text === null && pattern.exec(said);
      if (m) text = words(m);
    }
    const name = label(field);
    const words = text === null ? said : text;  // a problem not known here: the server's words
    return { field, text: name ? t("problem.of_field", { field: name, problem: words }) : words };
  }
  // the Error a failed call throws: its message in the reader's words, `problems` per field
  OT.failure = (status, body) => {
    const detail = body && typeof body.detail === "string" ? body.detail : "";
    const problems = (body && Array.isArray(body.errors) ? body.errors : [])
      .filter((p) => p && typeof p === "object")
      .map((p) => problem(String(p.field ?? ""), String(p.problem ?? "")))
      .filter((p) => p.text);
    // several refusals in one detail ("tag 'vip': …; tag 'x': …"): each in the reader's words
    const parts = detail.split(/; (?=tag ')/).map((part) => sentence(part));
    const known = parts.every(Boolean) && parts.length > 1
      ? { text: parts.map((p) => p.text).join(t("common.separator")), field: parts[0].field }
      : sentence(detail);
    const text = problems.length ? problems.map((p) => p.text).join(t("common.separator"))
      : known ? known.text
      : BY_STATUS[status] && (status !== 403 || !detail) ? t(BY_STATUS[status])
      : detail || t("problem.failed", { status });
    const error = new Error(text);
    Object.assign(error, { status, detail, problems: problems.length ? problems : known && known.field ? [known] : [] });
    return error;
  };
  // the existing tags a near-duplicate's detail names ("'紧急' nearly equals the existing tag 'urgent' ...")
  OT.nearDuplicates = (detail) => [...new Set([...(detail || "").matchAll(/the existing tag '(.+?)'/g)].map((m) => m[1]))].map(named);
  // one sentence the Tag API said (a refusal in a batch's outcomes), in the reader's words
  OT.reworded = (said) => { const known = sentence(said); return known ? known.text : said; };
  // an error shown in `box` (role=alert), and on each field of `form` it names (an input's
  // data-field holds the API's fields it sends, else its name is one); cleared before the next try
  OT.showProblems = (box, error, form = null) => {
    OT.clearProblems(box, form);
    box.textContent = error.message; box.hidden = false;
    if (!form) return;
    for (const p of error.problems || []) {
      for (const input of form.querySelectorAll("[data-field], [name]")) {
        if ((input.dataset.field || input.name).split(" ").includes(p.field)) input.setAttribute("aria-invalid", "true");
      }
    }
  };
  OT.clearProblems = (box, form = null) => {
    box.textContent = ""; box.hidden = true;
    if (form) for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  };
})();
window.OT = OT;
for (const time of document.querySelectorAll("time[data-local]")) {
  time.textContent = time.dataset.local === "day" ? OT.day(time.dateTime) : OT.when(time.dateTime);
}
