// The customers list: a refused filter in the reader's words, save the filter shown as a view
// the team shares, delete a saved view.
// The page is rendered on the server (a view is its URL), so a change reloads it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // a day picked means that day where the reader is: the filter sends the reader's zone (its
  // name, else its offset), and a saved view's instant shows as the reader's day
  const pad = (n) => String(Math.floor(Math.abs(n))).padStart(2, "0");
  const tz = document.getElementById("f-tz");
  if (tz) tz.value = OT.zone();
  for (const picker of document.querySelectorAll("input[type=date][data-instant]")) {
    const at = new Date(picker.dataset.instant);
    if (!Number.isNaN(at.getTime())) picker.value = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`;
  }
  // a filter refused: in the reader's words, on the fields it names (the server gives the Tag
  // API's field problems)
  const error = document.getElementById("error");
  if (error) OT.showProblems(error, OT.failure(422, { errors: JSON.parse(error.dataset.problems) }), document.getElementById("filters"));
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
