// The customers list: save the filter shown as a view the team shares, delete a saved view.
// The page is rendered on the server (a view is its URL), so a change reloads it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const save = document.getElementById("save-view");
  if (save) save.addEventListener("click", async () => {
    const name = prompt(OT.t("customers.view_name_prompt"));
    if (!name) return;
    try {
      const filter = JSON.parse(save.dataset.filter);
      await OT.api("/console/api/views", { method: "POST", body: { list: "customers", name, filter, sort: save.dataset.sort } });
      location.reload();
    } catch (error) { OT.toast(error.message, true); }
  });
  for (const button of document.querySelectorAll("#views button.del")) {
    button.addEventListener("click", async () => {
      if (!confirm(OT.t("views.confirm_delete", { name: button.dataset.name }))) return;
      try {
        await OT.api(`/console/api/views/${encodeURIComponent(button.dataset.view)}`, { method: "DELETE" });
        button.closest(".saved-view").remove();
      } catch (error) { OT.toast(error.message, true); }
    });
  }
});
