// The customer page: its alerts' causes in the reader's words; manual customer tags through the
// Tag API (session + CSRF): the page is rendered on the server, so a change reloads it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const detail = document.getElementById("detail");
  if (!detail) return;
  // each alert's causes in the reader's words, as the order page and the support page say them
  for (const why of document.querySelectorAll("#alerts .why[data-causes]")) {
    const alert = { causes: JSON.parse(why.dataset.causes), reasons: JSON.parse(why.dataset.reasons || "[]") };
    why.replaceChildren(...OT.alertWhy(alert).map((text) => OT.el("div", { text })));
  }
  const base = `/customers/${encodeURIComponent(detail.dataset.customer)}/tags`;
  const form = document.getElementById("manual");
  if (form) form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const tag = document.getElementById("m-tag");
    if (!tag.value) { OT.toast(OT.t("order.pick_tag"), true); tag.focus(); return; }
    try {
      await OT.api(base, { method: "POST", body: { tag: tag.value, reason: document.getElementById("m-reason").value } });
      location.reload();
    } catch (error) { OT.toast(error.message, true); }
  });
  for (const button of document.querySelectorAll("button.remove")) {
    button.addEventListener("click", async () => {
      try {
        await OT.api(`${base}/${encodeURIComponent(button.dataset.tag)}`, { method: "DELETE" });
        location.reload();
      } catch (error) { OT.toast(error.message, true); }
    });
  }
});
