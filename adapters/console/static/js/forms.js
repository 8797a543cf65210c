// The API's 422 shown at the field it names. A path like "triggers.0.event" or
// "conditions.all.1.op" goes to the most specific [data-field] the form has ("triggers.0.event",
// else "triggers.0", else "triggers"); what matches no field goes to the form's top.

export function clearErrors(form) {
  for (const el of form.querySelectorAll(".field-error, .form-error")) el.textContent = "";
  for (const el of form.querySelectorAll(".field.invalid")) el.classList.remove("invalid");
}

export function showErrors(form, err) {
  clearErrors(form);
  const errors = err.errors?.length ? err.errors : [{ field: "", reason: err.detail || err.message }];
  const top = form.querySelector(".form-error");
  for (const e of errors) {
    const path = String(e.field || "").split(".");
    let at = null;
    for (let n = path.length; n > 0 && !at; n--) {
      at = form.querySelector(`.field[data-field="${CSS.escape(path.slice(0, n).join("."))}"]`);
    }
    const exact = at && at.dataset.field === e.field;
    const text = exact ? e.reason : `${e.field ? e.field + ": " : ""}${e.reason}`;
    const slot = at ? at.querySelector(":scope > .field-error") : top;
    if (at) at.classList.add("invalid");
    if (slot) slot.textContent = slot.textContent ? `${slot.textContent} · ${text}` : text;
  }
  const first = form.querySelector(".field.invalid");
  if (first) first.scrollIntoView({ block: "center", behavior: "instant" });
}
