// The triggers part of the campaign form: one fieldset per trigger, whose fields depend on its
// type (presence, velocity, event). Field names are the API's paths ("triggers.0.event"), so
// a 422 about a trigger lands at its field (forms.js).
import { h, clear, field, select } from "./dom.js";
import { t } from "./i18n.js";

const PRESENCE_EVENTS = ["enter", "dwell", "exit"];
const KINDS = ["store", "zone", "competitor"];
const SOURCES = ["gps", "beacon", "nfc"];
const FIGURES = ["store_visit", "page_view", "search", "click", "purchase", "interest"];

export function checks(name, values, chosen, label = (v) => v) {
  return h(
    "div",
    { class: "checks" },
    values.map((v) =>
      h(
        "label",
        { class: "check" },
        h("input", { type: "checkbox", name, value: v, checked: chosen.includes(v) }),
        label(v),
      ),
    ),
  );
}

export const checked = (root, name) =>
  [...root.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);

// -> {element, read()}: read() gives the triggers as the API takes them
export function triggerEditor(initial) {
  const box = h("div", { class: "triggers" });
  let triggers = initial.map((x) => ({ ...x })); // what each row was last drawn with

  // Every change of rows (type changed, row added or removed) reads what is typed first, so
  // re-drawing keeps it.
  const redraw = (next) => {
    triggers = next;
    clear(box);
    triggers.forEach((tr, i) => box.append(row(tr, i)));
  };

  function row(tr, i) {
    const path = `triggers.${i}`;
    const type = select(
      ["presence", "velocity", "event"].map((v) => [v, t(`trigger_${v}`)]),
      tr.type,
      { name: `${path}.type` },
    );
    type.addEventListener("change", () => {
      const now = read();
      now[i] = { type: type.value };
      redraw(now);
    });
    const remove = h(
      "button",
      { type: "button", class: "danger small", onclick: () => redraw(read().filter((_, j) => j !== i)) },
      "×",
    );
    return h(
      "fieldset",
      { class: "trigger field", "data-field": path },
      h("legend", {}, `${t("trigger")} ${i + 1}`, " ", triggers.length > 1 ? remove : null),
      field(t("trigger_type"), type, `${path}.type`),
      fieldsOf(tr, path),
      h("span", { class: "field-error" }),
    );
  }

  // each row's fields are read as the type it was drawn with (its select may have just changed)
  function read() {
    return triggers.map((tr, i) => {
      const path = `triggers.${i}`;
      const val = (n) => box.querySelector(`[name="${path}.${n}"]`);
      const out = { type: tr.type };
      if (tr.type === "presence") {
        out.event = val("event").value;
        const kinds = checked(box, `${path}.fence_kinds`);
        const sources = checked(box, `${path}.sources`);
        const ids = val("fence_ids")
          .value.split(",")
          .map((x) => x.trim())
          .filter(Boolean);
        if (kinds.length) out.fence_kinds = kinds;
        if (sources.length) out.sources = sources;
        if (ids.length) out.fence_ids = ids;
      } else if (tr.type === "velocity") {
        out.kpi = val("kpi").value;
        out.direction = val("direction").value;
      } else {
        out.event_type = val("event_type").value.trim();
        if (val("in_store").checked) out.in_store = true;
        if (val("near_store_m").value) out.near_store_m = Number(val("near_store_m").value);
      }
      return out;
    });
  }

  const add = h(
    "button",
    {
      type: "button",
      id: "add-trigger",
      onclick: () => redraw([...read(), { type: "presence", event: "enter" }]),
    },
    t("add_trigger"),
  );
  redraw(triggers);
  return {
    element: h(
      "div",
      {},
      h("div", { class: "field", "data-field": "triggers" }, box, h("span", { class: "field-error" })),
      add,
    ),
    read,
  };
}

function fieldsOf(tr, path) {
  if (tr.type === "presence") {
    return [
      field(
        t("event"),
        select(
          PRESENCE_EVENTS.map((e) => [e, t(`event_${e}`)]),
          tr.event || "enter",
          { name: `${path}.event` },
        ),
        `${path}.event`,
      ),
      field(
        t("fence_kinds"),
        checks(`${path}.fence_kinds`, KINDS, tr.fence_kinds || [], (k) => t(`kind_${k}`)),
        `${path}.fence_kinds`,
      ),
      field(
        t("fence_ids"),
        h("input", {
          name: `${path}.fence_ids`,
          list: "fence-ids",
          value: (tr.fence_ids || []).join(", "),
          placeholder: t("any"),
        }),
        `${path}.fence_ids`,
      ),
      field(t("sources"), checks(`${path}.sources`, SOURCES, tr.sources || []), `${path}.sources`),
    ];
  }
  if (tr.type === "velocity") {
    return [
      field(t("kpi"), select(FIGURES, tr.kpi || "store_visit", { name: `${path}.kpi` }), `${path}.kpi`),
      field(
        t("direction"),
        select(
          ["rising", "falling"].map((d) => [d, t(`trend_${d}`)]),
          tr.direction || "falling",
          { name: `${path}.direction` },
        ),
        `${path}.direction`,
      ),
    ];
  }
  return [
    field(
      t("event"),
      h("input", { name: `${path}.event_type`, list: "event-types", value: tr.event_type || tr.event || "" }),
      `${path}.event_type`,
    ),
    field(
      t("in_store"),
      h("input", { type: "checkbox", name: `${path}.in_store`, checked: tr.in_store }),
      `${path}.in_store`,
    ),
    field(
      t("near_store_m"),
      h("input", { type: "number", name: `${path}.near_store_m`, value: tr.near_store_m ?? "", min: 1 }),
      `${path}.near_store_m`,
    ),
  ];
}
