// Beacons and NFC tags, zone by zone, of one store: list, add, edit (beacons), remove. A
// beacon may carry its spot on the map in metadata.position ([lon, lat]); the map draws it
// there, else at its zone's middle.
import { h, clear, field, select, table, toast } from "./dom.js";
import { t } from "./i18n.js";
import { qs } from "./api.js";
import { showErrors } from "./forms.js";

export async function mount(root, ctx) {
  const storeSel = select(
    ctx.stores.map((s) => [s.store_id, s.name || s.store_id]),
    ctx.stores[0]?.store_id,
    { id: "devices-store" },
  );
  const body = h("div", { id: "devices" });
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, t("nav_devices")), field(t("store"), storeSel, "store")),
    body,
  );
  storeSel.addEventListener("change", () => load());

  async function load() {
    const store = storeSel.value;
    clear(body);
    if (!store) return body.append(h("p", { class: "muted" }, t("no_store")));
    const [fences, beacons, tags] = await Promise.all([
      ctx.api.get(`/v1/geofences${qs({ store_id: store })}`),
      ctx.api.get(`/v1/beacons${qs({ store_id: store })}`),
      ctx.api.get(`/v1/nfc-tags${qs({ store_id: store })}`),
    ]);
    const places = fences.features.filter((f) => f.properties.kind !== "competitor");
    places.sort((a, b) =>
      a.properties.kind === "store"
        ? -1
        : b.properties.kind === "store"
          ? 1
          : a.properties.name.localeCompare(b.properties.name),
    );
    if (!places.length) body.append(h("p", { class: "muted" }, t("no_zone")));
    for (const f of places) {
      const zoneBeacons = beacons.beacons.filter((b) => b.geofence_id === f.id);
      const zoneTags = tags.tags.filter((x) => x.geofence_id === f.id);
      body.append(zoneCard(f, zoneBeacons, zoneTags));
    }
  }

  function zoneCard(f, beacons, tags) {
    const isZone = f.properties.kind === "zone";
    const slot = h("div", { class: "form-slot" });
    const beaconRows = beacons.map((b) =>
      h(
        "tr",
        { "data-beacon": b.id },
        h("td", {}, b.id),
        h(
          "td",
          {},
          b.type === "ibeacon" ? `${b.uuid} / ${b.major} / ${b.minor}` : `${b.namespace} / ${b.instance}`,
        ),
        h("td", {}, b.measured_power ?? "—"),
        h("td", {}, b.placement || ""),
        h(
          "td",
          { class: "actions" },
          h("button", { type: "button", onclick: () => beaconForm(slot, f, b) }, t("edit")),
          h(
            "button",
            {
              type: "button",
              class: "danger",
              onclick: () => remove(`/v1/beacons/${encodeURIComponent(b.id)}`, b.id),
            },
            t("remove"),
          ),
        ),
      ),
    );
    const tagRows = tags.map((x) =>
      h(
        "tr",
        { "data-tag": x.id },
        h("td", {}, x.id),
        h("td", {}, x.uid || "—"),
        h("td", {}, x.sun ? t("yes") : t("no")),
        h("td", {}, x.placement || ""),
        h(
          "td",
          { class: "actions" },
          h(
            "button",
            {
              type: "button",
              class: "danger",
              onclick: () => remove(`/v1/nfc-tags/${encodeURIComponent(x.id)}`, x.id),
            },
            t("remove"),
          ),
        ),
      ),
    );
    return h(
      "section",
      { class: "card zone", "data-zone": f.id },
      h(
        "h2",
        {},
        `${f.properties.name} `,
        h("span", { class: `badge ${f.properties.kind}` }, t(`kind_${f.properties.kind}`)),
      ),
      isZone ? h("h3", {}, t("beacons")) : null,
      isZone
        ? beaconRows.length
          ? table([t("id"), t("beacon_ids"), t("measured_power"), t("placement"), ""], beaconRows)
          : h("p", { class: "muted" }, t("none"))
        : null,
      h("h3", {}, t("nfc_tags")),
      tagRows.length
        ? table([t("id"), "UID", "SUN", t("placement"), ""], tagRows)
        : h("p", { class: "muted" }, t("none")),
      h(
        "div",
        { class: "row" },
        isZone
          ? h(
              "button",
              { type: "button", class: "add-beacon", onclick: () => beaconForm(slot, f, null) },
              t("add_beacon"),
            )
          : null,
        h("button", { type: "button", class: "add-tag", onclick: () => tagForm(slot, f) }, t("add_tag")),
      ),
      slot,
    );
  }

  async function remove(path, id) {
    if (!confirm(t("confirm_remove", { id }))) return;
    try {
      await ctx.api.del(path);
      toast(t("removed", { id }), "ok");
      await load();
    } catch (err) {
      toast(err.detail || err.message, "error");
    }
  }

  function beaconForm(slot, zone, b) {
    const v = b || { type: "ibeacon", metadata: {} };
    const type = select(
      [
        ["ibeacon", "iBeacon"],
        ["eddystone_uid", "Eddystone-UID"],
      ],
      v.type,
      { name: "type" },
    );
    const inp = (name, value, attrs = {}) => h("input", { name, value: value ?? "", ...attrs });
    const pos = Array.isArray(v.metadata?.position) ? v.metadata.position : [];
    const ib = h(
      "div",
      { class: "grid2" },
      field("UUID", inp("uuid", v.uuid), "uuid"),
      field("Major", inp("major", v.major, { type: "number" }), "major"),
      field("Minor", inp("minor", v.minor, { type: "number" }), "minor"),
    );
    const ed = h(
      "div",
      { class: "grid2" },
      field("Namespace", inp("namespace", v.namespace), "namespace"),
      field("Instance", inp("instance", v.instance), "instance"),
    );
    const sync = () => ((ib.hidden = type.value !== "ibeacon"), (ed.hidden = type.value === "ibeacon"));
    type.addEventListener("change", sync);
    const form = h(
      "form",
      { class: "card inset beacon-form" },
      h("h3", {}, b ? t("edit_beacon", { id: b.id }) : t("add_beacon")),
      h("p", { class: "form-error", role: "alert" }),
      field(t("type"), type, "type"),
      ib,
      ed,
      h(
        "div",
        { class: "grid2" },
        field(
          t("measured_power"),
          inp("measured_power", v.measured_power, { type: "number", placeholder: "-59" }),
          "measured_power",
        ),
        field(t("placement"), inp("placement", v.placement), "placement"),
        field(t("lat"), inp("lat", pos[1], { type: "number", step: "any" }), "metadata.position"),
        field(t("lon"), inp("lon", pos[0], { type: "number", step: "any" }), "metadata.position"),
      ),
      h(
        "div",
        { class: "row" },
        h("button", { class: "primary", type: "submit" }, t("save")),
        h("button", { type: "button", onclick: () => clear(slot) }, t("cancel")),
      ),
    );
    sync();
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const fd = new FormData(form);
      const num = (k) => (fd.get(k) === "" || fd.get(k) === null ? null : Number(fd.get(k)));
      const metadata = { ...(v.metadata || {}) };
      if (num("lat") !== null && num("lon") !== null) metadata.position = [num("lon"), num("lat")];
      else delete metadata.position;
      const doc = {
        geofence_id: zone.id,
        measured_power: num("measured_power"),
        placement: fd.get("placement") || null,
        metadata,
      };
      if (type.value === "ibeacon")
        Object.assign(doc, { uuid: fd.get("uuid"), major: num("major"), minor: num("minor") });
      else Object.assign(doc, { namespace: fd.get("namespace"), instance: fd.get("instance") });
      try {
        if (b) await ctx.api.put(`/v1/beacons/${encodeURIComponent(b.id)}`, doc);
        else await ctx.api.post("/v1/beacons", doc);
        toast(t("saved", { name: b?.id || t("beacon") }), "ok");
        await load();
      } catch (err) {
        showErrors(form, err);
      }
    });
    clear(slot).append(form);
  }

  function tagForm(slot, fence) {
    const inp = (name, attrs = {}) => h("input", { name, ...attrs });
    const form = h(
      "form",
      { class: "card inset tag-form" },
      h("h3", {}, t("add_tag")),
      h("p", { class: "form-error", role: "alert" }),
      h(
        "div",
        { class: "grid2" },
        field(t("id"), inp("id", { required: true }), "id"),
        field("UID", inp("uid", { placeholder: "04A1B2C3D4E5F6" }), "uid"),
        field(t("placement"), inp("placement"), "placement"),
        field(t("sun_file_key"), inp("file_read_key", { placeholder: "32 hex" }), "sun.file_read_key"),
        field(t("sun_meta_key"), inp("meta_read_key", { placeholder: "32 hex" }), "sun.meta_read_key"),
      ),
      h(
        "div",
        { class: "row" },
        h("button", { class: "primary", type: "submit" }, t("save")),
        h("button", { type: "button", onclick: () => clear(slot) }, t("cancel")),
      ),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const fd = new FormData(form);
      const doc = {
        id: fd.get("id"),
        geofence_id: fence.id,
        uid: fd.get("uid") || null,
        placement: fd.get("placement") || null,
      };
      if (fd.get("file_read_key"))
        doc.sun = { file_read_key: fd.get("file_read_key"), meta_read_key: fd.get("meta_read_key") || null };
      try {
        await ctx.api.post("/v1/nfc-tags", doc);
        toast(t("saved", { name: doc.id }), "ok");
        await load();
      } catch (err) {
        showErrors(form, err);
      }
    });
    clear(slot).append(form);
  }

  await load();
}
