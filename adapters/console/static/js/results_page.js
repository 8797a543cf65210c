// Results (admin): per campaign and channel, sent / delivered / opened / clicked / redeemed /
// revenue, and the uplift in conversion against the control group and the global holdout with
// its 95 % interval, drawn as a chart.
import { h, clear, field, select, table, fmtNum } from "./dom.js";
import { t } from "./i18n.js";
import { qs } from "./api.js";
import { barChart, intervalChart } from "./charts.js";

const FUNNEL = [
  ["sent", "#1d4ed8"],
  ["delivered", "#0891b2"],
  ["opened", "#16a34a"],
  ["clicked", "#ca8a04"],
  ["redeemed", "#c2410c"],
];

export async function mount(root, ctx, [wanted]) {
  const campaigns = (await ctx.api.get("/v1/campaigns")).campaigns;
  const campaignSel = select(
    campaigns.map((c) => [c.id, c.name || c.id]),
    wanted || campaigns[0]?.id,
    { id: "results-campaign" },
  );
  const days = h("input", { type: "number", id: "results-days", min: 1, max: 365, value: 7 });
  const body = h("div", { id: "results" });
  root.append(
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, t("nav_results")),
      field(t("campaign"), campaignSel, "campaign"),
      field(t("attribution_days"), days, "attribution_days"),
    ),
    body,
  );

  async function load() {
    if (!campaignSel.value) return clear(body).append(h("p", { class: "muted" }, t("no_campaigns")));
    let r;
    try {
      r = await ctx.api.get(
        `/v1/campaigns/${encodeURIComponent(campaignSel.value)}/results${qs({ attribution_days: days.value })}`,
      );
    } catch (err) {
      return clear(body).append(h("p", { class: "error" }, err.detail || err.message));
    }
    const channels = Object.entries(r.by_channel);
    const row = (name, m) => [
      name,
      fmtNum(m.messages),
      fmtNum(m.sent),
      m.delivered === null ? "—" : fmtNum(m.delivered),
      fmtNum(m.opened),
      fmtNum(m.clicked),
      fmtNum(m.redeemed),
      fmtNum(m.revenue, 2),
    ];
    const pts = (v) => (v === null || v === undefined ? null : v * 100);
    const up = (key, u) => ({
      label: t(key),
      value: pts(u.absolute),
      low: pts(u.ci95_low),
      high: pts(u.ci95_high),
    });
    const g = r.groups;
    clear(body).append(
      h("h2", {}, t("by_channel")),
      table(
        [
          t("channel"),
          t("messages"),
          t("m_sent"),
          t("m_delivered"),
          t("m_opened"),
          t("m_clicked"),
          t("m_redeemed"),
          t("revenue"),
        ],
        [...channels.map(([ch, m]) => row(ch, m)), row(t("total"), r.totals)],
        { id: "results-table" },
      ),
      h(
        "div",
        { class: "charts" },
        barChart(
          channels.map(([ch, m]) => ({
            label: ch,
            values: Object.fromEntries(FUNNEL.map(([k]) => [k, m[k] || 0])),
          })),
          FUNNEL.map(([k, color]) => ({ key: k, label: t(`m_${k}`), color })),
          { title: t("funnel_chart") },
        ),
        intervalChart([up("vs_control", r.uplift_vs_control), up("vs_holdout", r.uplift_vs_holdout)], {
          title: t("uplift_chart"),
        }),
      ),
      h("h2", {}, t("groups")),
      table(
        [t("group"), t("customers"), t("converters"), t("rate")],
        ["treated", "control", "holdout"].map((k) => [
          t(`group_${k}`),
          fmtNum(g[k]?.customers),
          fmtNum(g[k]?.converters),
          g[k]?.rate === null ? "—" : `${fmtNum(g[k].rate * 100, 1)} %`,
        ]),
      ),
      h(
        "p",
        { class: "muted" },
        t("uplift_note", {
          pc: r.uplift_vs_control.p_value === null ? "n/a" : r.uplift_vs_control.p_value.toFixed(3),
          ph: r.uplift_vs_holdout.p_value === null ? "n/a" : r.uplift_vs_holdout.p_value.toFixed(3),
        }),
        " ",
        t("conversion_rule", { days: r.attribution_days }),
      ),
    );
  }

  campaignSel.addEventListener("change", load);
  days.addEventListener("change", load);
  await load();
}
