// The side panel of the map: the selected fence's form (name, kind, store, id) with Save,
// vertex editing, Delete and its H3 cells; the API's 422 is shown here at the field and on
// the map next to the shape itself (map_page.js showError).
import { h, clear, field, select } from "./dom.js";
import { t } from "./i18n.js";

// sel: {layer, feature|null (null: drawn, not saved yet)}; actions: {save, discard, remove,
// toggleEdit, toggleCells}
export function renderPanel(panel, ctx, sel, actions) {
  clear(panel);
  if (!sel) {
    panel.append(h("h2", {}, t("map_title")), h("p", { class: "muted" }, t("map_help")), legend());
    return;
  }
  const props = sel.feature?.properties || {};
  const isNew = !sel.feature;
  const stores = ctx.stores.map((s) => [s.store_id, `${s.name || s.store_id} (${s.store_id})`]);
  const name = h("input", { id: "fence-name", value: props.name || "", required: true });
  const kind = select(
    ["store", "zone", "competitor"].map((k) => [k, t(`kind_${k}`)]),
    props.kind || (ctx.admin ? "store" : "zone"),
    { id: "fence-kind" },
  );
  // an admin may create a new store by typing its id; staff pick one of their stores
  const store = ctx.admin
    ? h("input", {
        id: "fence-store",
        list: "store-ids",
        value: props.store_id || ctx.stores[0]?.store_id || "",
      })
    : select(stores, props.store_id || ctx.stores[0]?.store_id, { id: "fence-store" });
  const fid = h("input", {
    id: "fence-id",
    value: sel.feature?.id || "",
    placeholder: t("fence_id_auto"),
    disabled: !isNew,
  });
  const form = h(
    "form",
    { class: "panel-form", id: "fence-form" },
    h("h2", {}, isNew ? t("fence_new") : t("fence_edit")),
    h("p", { class: "error geometry-error", "data-field": "geometry", role: "alert" }),
    field(t("name"), name, "properties.name"),
    field(t("kind"), kind, "properties.kind"),
    field(t("store"), store, "properties.store_id"),
    field(t("fence_id"), fid, "id"),
    ctx.admin
      ? h(
          "datalist",
          { id: "store-ids" },
          ctx.stores.map((s) => h("option", { value: s.store_id })),
        )
      : null,
    sel.radius !== undefined
      ? h("p", { class: "muted" }, t("radius_m", { r: Math.round(sel.radius) }))
      : null,
    h(
      "div",
      { class: "row" },
      h("button", { class: "primary", type: "submit", id: "fence-save" }, t("save")),
      isNew
        ? h("button", { type: "button", id: "fence-discard", onclick: actions.discard }, t("discard"))
        : h(
            "button",
            { type: "button", id: "fence-vertices", onclick: actions.toggleEdit },
            t(sel.editing ? "vertices_done" : "vertices"),
          ),
    ),
    isNew
      ? null
      : h(
          "div",
          { class: "row" },
          h(
            "button",
            { type: "button", id: "fence-cells", onclick: actions.toggleCells },
            t(sel.cells ? "cells_hide" : "cells_show"),
          ),
          h(
            "button",
            { type: "button", class: "danger", id: "fence-delete", onclick: actions.remove },
            t("delete"),
          ),
        ),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    actions.save({
      id: fid.value.trim() || undefined,
      properties: {
        ...props,
        name: name.value.trim(),
        kind: kind.value,
        store_id: kind.value === "competitor" && !store.value ? null : store.value.trim(),
      },
    });
  });
  panel.append(form);
  if (sel.cellsInfo) panel.append(h("p", { class: "muted", id: "cells-info" }, sel.cellsInfo));
}

// The API's field errors at their fields; geometry errors (and any other) at the top.
export function showFieldErrors(panel, err) {
  for (const el of panel.querySelectorAll(".field-error, .geometry-error")) el.textContent = "";
  const top = panel.querySelector(".geometry-error");
  const errors = err.errors.length ? err.errors : [{ field: "", reason: err.detail }];
  for (const e of errors) {
    const f = (e.field || "").replace(/^features\[\d+\]\./, "");
    const at = [...panel.querySelectorAll(".field[data-field]")].find((el) => el.dataset.field === f);
    const target = at ? at.querySelector(".field-error") : top;
    if (target)
      target.textContent = [target.textContent, at ? e.reason : `${f ? f + ": " : ""}${e.reason}`]
        .filter(Boolean)
        .join(" · ");
  }
  if (!errors.length && top) top.textContent = err.detail;
}

function legend() {
  const item = (cls, key) => h("li", {}, h("span", { class: `swatch ${cls}` }), t(key));
  return h(
    "ul",
    { class: "legend" },
    item("store", "kind_store"),
    item("zone", "kind_zone"),
    item("competitor", "kind_competitor"),
    item("beacon", "beacons"),
    item("tag", "nfc_tags"),
    item("cell-full", "cells_full"),
    item("cell-part", "cells_partial"),
  );
}
