// Decisions (admin): a customer's recent decisions, and for each the reason every campaign
// considered got (chosen, outranked, no consent, suppressed, cooldown...), with its steps.
import { h, clear, field, table, fmtDate } from "./dom.js";
import { t } from "./i18n.js";
import { qs } from "./api.js";

export async function mount(root, ctx, [wanted]) {
  const input = h("input", {
    id: "decisions-customer",
    value: wanted || "",
    placeholder: "device:phone-1",
    required: true,
  });
  const form = h(
    "form",
    { class: "page-head", id: "decisions-form" },
    h("h1", {}, t("nav_decisions")),
    field(t("customer_id"), input, "customer_id"),
    h("button", { class: "primary", type: "submit" }, t("show")),
  );
  const body = h("div", { id: "decisions" });
  root.append(form, body);

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    history.replaceState(null, "", `#/decisions/${encodeURIComponent(input.value.trim())}`);
    load();
  });

  async function load() {
    const who = input.value.trim();
    if (!who) return;
    let res;
    try {
      res = await ctx.api.get(`/v1/decisions${qs({ customer_id: who, limit: 50 })}`);
    } catch (err) {
      return clear(body).append(h("p", { class: "error" }, err.detail || err.message));
    }
    const ds = res.decisions.slice().sort((a, b) => (a.ts < b.ts ? 1 : -1)); // newest first
    clear(body).append(
      ds.length ? h("div", {}, ds.map(card)) : h("p", { class: "muted" }, t("no_decisions")),
    );
  }

  function card(d) {
    return h(
      "section",
      { class: "card decision", "data-decision": d.id },
      h(
        "h2",
        {},
        h("span", { class: `badge outcome-${d.outcome}` }, d.outcome),
        " ",
        `${d.trigger_kind} · ${d.trigger_name}`,
        d.fence_id ? ` · ${d.fence_id}` : "",
      ),
      h(
        "p",
        { class: "muted" },
        fmtDate(d.ts),
        d.campaign_id ? ` · ${t("campaign")} ${d.campaign_id}` : "",
        d.offer_id ? ` · ${t("offer")} ${d.offer_id}` : "",
        d.channel ? ` · ${d.channel}` : "",
        d.outbox_status ? ` · ${t("outbox")} ${d.outbox_status}` : "",
      ),
      table(
        [t("campaign"), t("result"), t("score"), t("reason")],
        d.traces.map((tr) =>
          h(
            "tr",
            { class: `trace result-${tr.result}` },
            h("td", {}, tr.campaign_id),
            h("td", {}, h("strong", {}, tr.result)),
            h("td", { class: "num" }, tr.score.toFixed(3)),
            h(
              "td",
              {},
              h(
                "ol",
                { class: "steps" },
                tr.steps.map((s) => h("li", {}, s)),
              ),
            ),
          ),
        ),
      ),
    );
  }

  if (input.value) await load();
}
