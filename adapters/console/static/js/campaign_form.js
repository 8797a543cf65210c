// The campaign form: triggers, conditions (the condition language, as JSON), offers, channels,
// caps and escalation. It builds the body of POST/PUT /v1/campaigns and nothing more: the API
// type-checks it and its 422 is shown at the field it names (forms.js).
import { h, field, select } from "./dom.js";
import { t } from "./i18n.js";
import { showErrors, clearErrors } from "./forms.js";
import { triggerEditor, checks, checked } from "./campaign_triggers.js";

const CHANNELS = ["push", "sms"];
// the behavioural events POST /v1/events takes (README), offered as suggestions
const EVENTS = [
  "page_view",
  "search",
  "product_view",
  "click",
  "cart_add",
  "cart_abandon",
  "purchase",
  "purchase_cancel",
  "info_request",
  "email_open",
  "email_click",
  "app_open",
  "call_center_contact",
];
const CONDITION_EXAMPLE = { all: [{ field: "context.local_hour", op: "between", value: [9, 20] }] };

const toLocal = (unix) => {
  const d = new Date(unix * 1000);
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
};
const fromLocal = (v) => (v ? new Date(v).getTime() / 1000 : NaN);

// onSaved(campaign) after a 2xx; `existing`: the campaign being edited, or null
export function campaignForm(ctx, { existing, offers, fences, onSaved, onCancel }) {
  const now = Math.floor(Date.now() / 1000);
  // from the start of today: the form shows minutes, so "now" would be up to a minute late
  // and miss the walk-ins of that minute
  const today = Math.floor(new Date().setHours(0, 0, 0, 0) / 1000);
  const c = existing || {
    id: "",
    status: "draft",
    start: today,
    end: now + 30 * 86400,
    priority: 0,
    triggers: [{ type: "presence", event: "enter", fence_kinds: ["store"] }],
    conditions: null,
    offer_ids: [],
    channels: ["push", "sms"],
    control_pct: 0,
    cooldown_s: 7 * 86400,
    suppression_lists: [],
    escalation: null,
    action: "message",
  };
  const triggers = triggerEditor(c.triggers);

  const inp = (name, value, attrs = {}) => h("input", { name, value: value ?? "", ...attrs });
  const esc = c.escalation;
  const conditions = h(
    "textarea",
    { name: "conditions", rows: 6, spellcheck: "false", placeholder: JSON.stringify(CONDITION_EXAMPLE) },
    c.conditions ? JSON.stringify(c.conditions, null, 2) : "",
  );
  const form = h(
    "form",
    { class: "card campaign-form", id: "campaign-form", novalidate: true },
    h("h2", {}, existing ? t("campaign_edit", { id: existing.id }) : t("campaign_new")),
    h("p", { class: "form-error", role: "alert" }),
    h(
      "div",
      { class: "grid2" },
      field(t("id"), inp("id", c.id, { disabled: !!existing, required: true }), "id"),
      field(t("name"), inp("name", c.name), "name"),
      field(
        t("status"),
        select(
          ["draft", "live", "paused"].map((s) => [s, t(`status_${s}`)]),
          c.status === "disabled" ? "paused" : c.status,
          { name: "status" },
        ),
        "status",
      ),
      field(
        t("action"),
        select(
          [
            ["message", t("action_message")],
            ["call_center_task", t("action_call")],
          ],
          c.action || "message",
          { name: "action" },
        ),
        "action",
      ),
      field(t("start"), inp("start", toLocal(c.start), { type: "datetime-local" }), "start"),
      field(t("end"), inp("end", toLocal(c.end), { type: "datetime-local" }), "end"),
      field(t("priority"), inp("priority", c.priority, { type: "number" }), "priority"),
    ),
    h("h3", {}, t("triggers")),
    triggers.element,
    h("h3", {}, t("conditions")),
    field(t("conditions_help"), conditions, "conditions"),
    h(
      "details",
      { class: "muted" },
      h("summary", {}, t("conditions_fields")),
      h(
        "code",
        {},
        "profile.segment, profile.rfm.recency_days, profile.age_band, profile.churn_risk, profile.velocity.<kpi>.trend, profile.affinity.<category>, context.local_hour, context.day_of_week, context.store_id, context.fence_kind, context.store_open, context.source · ops: eq ne lt lte gt gte between in not_in exists",
      ),
    ),
    h("h3", {}, t("offers_channels")),
    field(
      t("offers"),
      offers.length
        ? checks(
            "offer_ids",
            offers.map((o) => o.id),
            c.offer_ids,
            (id) => `${offers.find((o) => o.id === id).name || id} (${id})`,
          )
        : h("p", { class: "muted" }, t("no_offers")),
      "offer_ids",
    ),
    field(t("channels"), checks("channels", CHANNELS, c.channels), "channels"),
    h("h3", {}, t("caps")),
    h(
      "div",
      { class: "grid2" },
      field(
        t("control_pct"),
        inp("control_pct", c.control_pct, { type: "number", min: 0, max: 50, step: "any" }),
        "control_pct",
      ),
      field(
        t("cooldown_h"),
        inp("cooldown_h", c.cooldown_s / 3600, { type: "number", min: 0, step: "any" }),
        "cooldown_s",
      ),
      field(
        t("suppression_lists"),
        inp("suppression_lists", (c.suppression_lists || []).join(", ")),
        "suppression_lists",
      ),
    ),
    h("h3", {}, t("escalation")),
    h(
      "div",
      { class: "grid2" },
      field(
        t("escalation_on"),
        h("input", { type: "checkbox", name: "escalation_on", checked: !!esc }),
        "escalation",
      ),
      field(
        t("escalation_after_min"),
        inp("escalation_after_min", esc ? esc.after_s / 60 : 60, { type: "number", min: 1 }),
        "escalation.after_s",
      ),
      field(
        t("escalation_channels"),
        checks("escalation_channels", CHANNELS, esc ? esc.channels : ["sms"]),
        "escalation.channels",
      ),
    ),
    h(
      "datalist",
      { id: "fence-ids" },
      fences.map((f) => h("option", { value: f.id }, f.properties.name)),
    ),
    h(
      "datalist",
      { id: "event-types" },
      EVENTS.map((e) => h("option", { value: e })),
    ),
    h(
      "div",
      { class: "row" },
      h("button", { class: "primary", type: "submit", id: "campaign-save" }, t("save")),
      h("button", { type: "button", onclick: onCancel }, t("cancel")),
    ),
  );

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const fd = new FormData(form);
    let cond = null;
    const raw = String(fd.get("conditions") || "").trim();
    if (raw) {
      try {
        cond = JSON.parse(raw);
      } catch (err) {
        return showErrors(form, {
          errors: [{ field: "conditions", reason: t("not_json", { error: err.message }) }],
        });
      }
    }
    const list = (k) =>
      String(fd.get(k) || "")
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean);
    const doc = {
      id: existing ? existing.id : String(fd.get("id") || "").trim(),
      name: String(fd.get("name") || "").trim() || null,
      status: fd.get("status"),
      action: fd.get("action"),
      start: fromLocal(fd.get("start")),
      end: fromLocal(fd.get("end")),
      priority: Number(fd.get("priority") || 0),
      triggers: triggers.read(),
      conditions: cond,
      offer_ids: checked(form, "offer_ids"),
      channels: checked(form, "channels"),
      control_pct: Number(fd.get("control_pct") || 0),
      cooldown_s: Number(fd.get("cooldown_h") || 0) * 3600,
      suppression_lists: list("suppression_lists"),
      escalation: fd.get("escalation_on")
        ? {
            after_s: Number(fd.get("escalation_after_min")) * 60,
            channels: checked(form, "escalation_channels"),
          }
        : null,
    };
    try {
      const saved = existing
        ? await ctx.api.put(`/v1/campaigns/${encodeURIComponent(existing.id)}`, doc)
        : await ctx.api.post("/v1/campaigns", doc);
      onSaved(saved);
    } catch (err) {
      showErrors(form, err);
    }
  });
  return form;
}

// The body a PUT needs from a campaign as GET returns it (status changes: pause, resume)
export function campaignBody(c, changes = {}) {
  const keys = [
    "id",
    "name",
    "status",
    "start",
    "end",
    "priority",
    "triggers",
    "conditions",
    "offer_ids",
    "channels",
    "control_pct",
    "cooldown_s",
    "suppression_lists",
    "escalation",
    "action",
  ];
  const doc = Object.fromEntries(keys.map((k) => [k, c[k]]));
  if (doc.status === "disabled") doc.status = "paused";
  return { ...doc, ...changes };
}
