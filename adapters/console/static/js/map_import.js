// Import a GeoJSON file (a FeatureCollection, or one Feature) through POST /v1/geofences/import:
// all or nothing. When the API refuses it, each bad feature is drawn on the map with its reason
// beside it, so the file can be fixed where it is wrong.
import { h, clear, toast } from "./dom.js";
import { t } from "./i18n.js";
import { ApiError } from "./api.js";
import { featureToLayer, styleFor } from "./map_shapes.js";

export async function importFile(ctx, file, drafts, panel) {
  drafts.clearLayers();
  let doc;
  try {
    doc = JSON.parse(await file.text());
  } catch (err) {
    toast(t("import_not_json", { error: err.message }), "error");
    return false;
  }
  const collection = doc?.type === "Feature" ? { type: "FeatureCollection", features: [doc] } : doc;
  try {
    const res = await ctx.api.post("/v1/geofences/import", collection);
    toast(t("imported", { n: res.imported }), "ok");
    return true;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    showImportErrors(collection, err, drafts, panel);
    toast(err.detail, "error");
    return false;
  }
}

function showImportErrors(collection, err, drafts, panel) {
  const list = h("ul", { class: "import-errors", id: "import-errors" });
  const errors = err.errors.length ? err.errors : [{ field: "", reason: err.detail }];
  for (const e of errors) {
    list.append(
      h("li", {}, e.index !== undefined ? `#${e.index} ` : "", `${e.field ? e.field + ": " : ""}${e.reason}`),
    );
    const feature = collection?.features?.[e.index];
    if (!feature) continue;
    try {
      const layer = featureToLayer(feature); // drawable even if the API refused it
      layer.setStyle(styleFor("draft", { error: true }));
      layer.bindTooltip(e.reason, { permanent: true, className: "shape-error", direction: "top" });
      drafts.addLayer(layer);
    } catch {
      // not even drawable (no coordinates): the list says why
    }
  }
  clear(panel).append(h("h2", {}, t("import_refused")), h("p", { class: "error" }, err.detail), list);
}
