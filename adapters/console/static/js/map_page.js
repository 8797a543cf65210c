// The map: every fence the key may see (stores, zones, competitors), its beacons and NFC tags;
// draw a polygon or a circle, move vertices, delete, import a GeoJSON file, show H3 cells.
// No basemap unless the server was given GEO_ENGINE_CONSOLE_TILE_URL (offline by default).
import { h, toast } from "./dom.js";
import { t } from "./i18n.js";
import { ApiError } from "./api.js";
import { featureToLayer, layerToFeature, styleFor, centerOf } from "./map_shapes.js";
import { renderPanel, showFieldErrors } from "./map_panel.js";
import { importFile } from "./map_import.js";

const L = window.L;
const PARIS = [48.8566, 2.3522];

export async function mount(root, ctx) {
  const mapEl = h("div", { id: "map", class: "map" });
  const panel = h("aside", { id: "map-panel", class: "panel" });
  const fileInput = h("input", {
    type: "file",
    id: "import-file",
    accept: ".geojson,.json,application/geo+json",
    hidden: true,
  });
  const toolbar = h(
    "div",
    { class: "toolbar" },
    h("button", { id: "draw-polygon", type: "button", onclick: () => draw("Polygon") }, t("draw_polygon")),
    h("button", { id: "draw-circle", type: "button", onclick: () => draw("Circle") }, t("draw_circle")),
    h("button", { id: "draw-finish", type: "button", onclick: finishDrawing }, t("draw_finish")),
    h("button", { id: "import", type: "button", onclick: () => fileInput.click() }, t("import_geojson")),
    fileInput,
  );
  root.append(h("div", { class: "map-page" }, toolbar, h("div", { class: "map-layout" }, mapEl, panel)));

  // a view from the start: Leaflet adds layers to a map without one only once it gets one, and
  // a circle not yet added has no bounds (fitting the first load over circles threw)
  // no zoom or fade animations: a view moves at once, so a tap lands where the map says and a
  // page left mid-animation leaves nothing running against a removed map ('_leaflet_pos')
  const still = { zoomAnimation: false, fadeAnimation: false, markerZoomAnimation: false };
  const map = L.map(mapEl, { zoomControl: true, preferCanvas: false, ...still }).setView(PARIS, 13);
  ctx.map = map; // the browser tests read the projection (containerPointToLatLng)
  if (ctx.tileUrl) L.tileLayer(ctx.tileUrl, { maxZoom: 19, attribution: ctx.tileAttribution }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);
  // beacons and tags above the fences' names (the tooltip pane is at 650)
  const devicesPane = map.createPane("devices");
  devicesPane.style.zIndex = 660;
  // names and devices only when zoomed in enough to read them: a whole city of labels is a
  // grey smear, and a city of tills' tags hides the stores they sit in
  const farOrNear = () => {
    const far = map.getZoom() < 15;
    mapEl.classList.toggle("far", far);
    devicesPane.style.display = far ? "none" : "";
  };
  map.on("zoomend", farOrNear);
  farOrNear();
  // geoman: drawing and vertex editing; its own toolbar stays hidden (the buttons above are
  // touch-sized). Self-intersection is allowed while drawing so the API, not the browser, says
  // what is wrong with a shape (one rule, one place).
  map.pm.setGlobalOptions({ allowSelfIntersection: true, snappable: false, continueDrawing: false });

  const groups = {
    store: L.featureGroup().addTo(map),
    zone: L.featureGroup().addTo(map),
    competitor: L.featureGroup().addTo(map),
    devices: L.featureGroup().addTo(map),
    drafts: L.featureGroup().addTo(map),
    cells: L.featureGroup().addTo(map),
  };
  L.control
    .layers(
      null,
      {
        [t("kind_store")]: groups.store,
        [t("kind_zone")]: groups.zone,
        [t("kind_competitor")]: groups.competitor,
        [t("devices_layer")]: groups.devices,
        [t("cells_layer")]: groups.cells,
      },
      { collapsed: false },
    )
    .addTo(map);

  const byId = new Map(); // fence id -> layer
  let sel = null;
  let crossing = null; // the marker of where a refused ring crosses itself
  const clearCrossing = () => {
    if (crossing) crossing.remove();
    crossing = null;
  };

  async function load(fit) {
    const fc = await ctx.api.get("/v1/geofences");
    for (const g of [groups.store, groups.zone, groups.competitor]) g.clearLayers();
    byId.clear();
    for (const f of fc.features) addFence(f);
    await loadDevices();
    const all = L.featureGroup([...byId.values()]);
    const now = { animate: false };
    if (fit && byId.size) map.fitBounds(all.getBounds(), { padding: [30, 30], maxZoom: 18, ...now });
    else if (fit) {
      const c = ctx.stores.find((s) => s.center)?.center;
      map.setView(c ? [c[1], c[0]] : PARIS, c ? 17 : 13, now);
    }
  }

  function addFence(feature) {
    const layer = featureToLayer(feature);
    layer.feature = feature;
    layer.setStyle(styleFor(feature.properties.kind));
    // names always shown: with no basemap they are what a user finds a store by
    layer.bindTooltip(feature.properties.name, {
      permanent: true,
      className: `label ${feature.properties.kind}`,
      direction: "center",
    });
    layer.on("click", (ev) => {
      L.DomEvent.stopPropagation(ev);
      if (!map.pm.globalDrawModeEnabled()) select({ layer, feature });
    });
    groups[feature.properties.kind].addLayer(layer);
    byId.set(feature.id, layer);
    return layer;
  }

  // Beacons and tags sit where their metadata.position says ([lon, lat]), else around the
  // middle of their fence, fanned out so two of them never hide each other.
  async function loadDevices() {
    groups.devices.clearLayers();
    const [beacons, tags] = await Promise.all([ctx.api.get("/v1/beacons"), ctx.api.get("/v1/nfc-tags")]);
    const seen = new Map();
    const place = (item, cls, label) => {
      const fence = byId.get(item.geofence_id);
      const pos = item.metadata?.position;
      let at = Array.isArray(pos) ? L.latLng(pos[1], pos[0]) : fence ? centerOf(fence) : null;
      if (!at) return;
      if (!Array.isArray(pos)) {
        // below the fence's name (drawn at its middle), then round it: ~9 m out at zoom 18
        const n = seen.get(item.geofence_id) || 0;
        seen.set(item.geofence_id, n + 1);
        const fan = L.point(22 * Math.cos(Math.PI / 2 + n * 0.8), 22 * Math.sin(Math.PI / 2 + n * 0.8));
        at = map.unproject(map.project(at, 18).add(fan), 18);
      }
      const color = cls === "beacon" ? "#0e7490" : "#b45309";
      L.circleMarker(at, {
        pane: "devices",
        radius: 7,
        className: `device ${cls}`,
        color: "#fff",
        weight: 2,
        fillColor: color,
        fillOpacity: 1,
      })
        .bindTooltip(label)
        .addTo(groups.devices);
    };
    for (const b of beacons.beacons) place(b, "beacon", `${t("beacon")} ${b.placement || b.id}`);
    for (const tag of tags.tags) place(tag, "tag", `${t("nfc_tag")} ${tag.placement || tag.id}`);
  }

  function select(next) {
    if (sel?.layer?.pm?.enabled()) sel.layer.pm.disable();
    if (sel?.layer && sel.feature) sel.layer.setStyle(styleFor(sel.feature.properties.kind));
    groups.cells.clearLayers();
    sel = next;
    if (sel?.feature) sel.layer.setStyle(styleFor(sel.feature.properties.kind, { selected: true }));
    if (sel) sel.radius = sel.layer instanceof L.Circle ? sel.layer.getRadius() : undefined;
    renderPanel(panel, ctx, sel, actions);
  }

  function draw(shape) {
    select(null);
    map.pm.enableDraw(shape);
  }

  // geoman finishes a polygon on a click of its first vertex; this is the same for a finger
  // that cannot hit it (its draw handler's own finish, the one its toolbar's "Finish" calls)
  function finishDrawing() {
    if (map.pm.Draw.Polygon.enabled()) map.pm.Draw.Polygon._finishShape();
  }

  map.on("pm:create", ({ layer }) => {
    groups.drafts.addLayer(layer);
    layer.setStyle(styleFor("draft"));
    layer.on("click", (ev) => (L.DomEvent.stopPropagation(ev), select({ layer, feature: null })));
    select({ layer, feature: null });
  });

  // a 422 beside the shape it is about, on the map, and at the field in the panel
  function showError(layer, err) {
    const reason = err.errors.map((e) => `${e.field}: ${e.reason}`).join("\n") || err.detail;
    layer.setStyle(styleFor("draft", { error: true }));
    layer.unbindTooltip();
    layer.bindTooltip(reason, { permanent: true, className: "shape-error", direction: "top" }).openTooltip();
    // GEOS names where a ring crosses itself ("Self-intersection[lon lat]"): mark the spot
    const at = /\[(-?\d+(?:\.\d+)?) (-?\d+(?:\.\d+)?)\]/.exec(reason);
    clearCrossing();
    crossing = at
      ? L.circleMarker([Number(at[2]), Number(at[1])], {
          radius: 9,
          className: "crossing",
          color: "#b91c1c",
          weight: 3,
          fillOpacity: 0,
        }).addTo(map)
      : null;
    showFieldErrors(panel, err);
  }

  const actions = {
    async save({ id, properties }) {
      const { layer, feature } = sel;
      const body = layerToFeature(layer, properties);
      if (id) body.id = id;
      try {
        const saved = feature
          ? await ctx.api.put(`/v1/geofences/${encodeURIComponent(feature.id)}`, { ...body, id: feature.id })
          : await ctx.api.post("/v1/geofences", body);
        if (feature) groups[feature.properties.kind].removeLayer(layer);
        else groups.drafts.removeLayer(layer);
        clearCrossing();
        byId.delete(saved.id);
        const fresh = addFence(saved);
        toast(t("saved", { name: saved.properties.name }), "ok");
        select({ layer: fresh, feature: saved });
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        showError(layer, err);
        toast(err.detail, "error");
      }
    },
    discard() {
      groups.drafts.removeLayer(sel.layer);
      clearCrossing();
      select(null);
    },
    async remove() {
      const { feature, layer } = sel;
      if (!confirm(t("confirm_delete", { name: feature.properties.name }))) return;
      try {
        await ctx.api.del(`/v1/geofences/${encodeURIComponent(feature.id)}`);
        groups[feature.properties.kind].removeLayer(layer);
        byId.delete(feature.id);
        select(null);
        toast(t("deleted", { name: feature.properties.name }), "ok");
      } catch (err) {
        toast(err.detail || err.message, "error");
      }
    },
    toggleEdit() {
      // moving vertices (or a circle's centre and radius); Save sends the new geometry
      if (sel.layer.pm.enabled()) sel.layer.pm.disable();
      else sel.layer.pm.enable({ allowSelfIntersection: true, snappable: false });
      sel.editing = sel.layer.pm.enabled();
      renderPanel(panel, ctx, sel, actions);
    },
    async toggleCells() {
      if (sel.cells) {
        groups.cells.clearLayers();
        sel.cells = false;
        sel.cellsInfo = null;
      } else {
        const fc = await ctx.api.get(`/v1/geofences/${encodeURIComponent(sel.feature.id)}/cells`);
        L.geoJSON(fc, {
          style: (f) => ({
            className: f.properties.full ? "cell full" : "cell partial",
            color: f.properties.full ? "#c2410c" : "#64748b",
            weight: 1,
            fillOpacity: f.properties.full ? 0.25 : 0.08,
          }),
        }).addTo(groups.cells);
        sel.cells = true;
        sel.cellsInfo = t("cells_info", { n: fc.features.length, res: fc.resolution });
      }
      renderPanel(panel, ctx, sel, actions);
    },
  };

  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    fileInput.value = "";
    if (!file) return;
    const done = await importFile(ctx, file, groups.drafts, panel);
    if (done) await load(false);
  });

  map.on("click", () => {
    if (!map.pm.globalDrawModeEnabled() && sel && sel.feature && !sel.editing) select(null);
  });

  renderPanel(panel, ctx, null, actions);
  await load(true);
  return () => {
    map.remove();
    ctx.map = null;
  };
}
