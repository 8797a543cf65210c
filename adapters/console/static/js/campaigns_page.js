// Campaigns (admin): the list with each one's status, the form (campaign_form.js), pause and
// resume, and a backtest over a period with its result as a table and a chart.
import { h, clear, field, table, fmtNum, fmtDate, toast } from "./dom.js";
import { t } from "./i18n.js";
import { campaignForm, campaignBody } from "./campaign_form.js";
import { barChart } from "./charts.js";

export async function mount(root, ctx) {
  const list = h("div", { id: "campaign-list" });
  const side = h("div", { id: "campaign-side" });
  root.append(
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, t("nav_campaigns")),
      h(
        "button",
        { class: "primary", id: "campaign-new", type: "button", onclick: () => openForm(null) },
        t("campaign_new"),
      ),
    ),
    list,
    side,
  );
  let campaigns = [];

  async function load() {
    campaigns = (await ctx.api.get("/v1/campaigns")).campaigns;
    const rows = campaigns.map((c) =>
      h(
        "tr",
        { "data-campaign": c.id },
        h("td", {}, h("strong", {}, c.name || c.id), h("br"), h("span", { class: "muted" }, c.id)),
        h(
          "td",
          {},
          h(
            "span",
            { class: `badge status-${c.status}`, title: c.disabled_reason || "" },
            t(`status_${c.status}`),
          ),
        ),
        h("td", {}, `${fmtDate(c.start)} → ${fmtDate(c.end)}`),
        h("td", {}, c.triggers.map(describeTrigger).join(" · ")),
        h("td", {}, c.channels.join(", ")),
        h(
          "td",
          { class: "actions" },
          h("button", { type: "button", onclick: () => openForm(c) }, t("edit")),
          c.status === "live"
            ? h(
                "button",
                { type: "button", class: "pause", onclick: () => setStatus(c, "paused") },
                t("pause"),
              )
            : h(
                "button",
                { type: "button", class: "resume", onclick: () => setStatus(c, "live") },
                t(c.status === "draft" ? "go_live" : "resume"),
              ),
          h("button", { type: "button", class: "backtest", onclick: () => openBacktest(c) }, t("backtest")),
          h("a", { class: "button", href: `#/results/${encodeURIComponent(c.id)}` }, t("nav_results")),
        ),
      ),
    );
    clear(list).append(
      rows.length
        ? table([t("campaign"), t("status"), t("period"), t("triggers"), t("channels"), ""], rows, {
            id: "campaigns-table",
          })
        : h("p", { class: "muted" }, t("no_campaigns")),
    );
  }

  function describeTrigger(tr) {
    if (tr.type === "presence")
      return `${t(`event_${tr.event}`)} ${(tr.fence_kinds || []).map((k) => t(`kind_${k}`)).join("/") || (tr.fence_ids || []).join(", ") || t("any")}`;
    if (tr.type === "velocity") return `${tr.kpi} ${t(`trend_${tr.direction}`)}`;
    return tr.event_type || tr.event;
  }

  async function setStatus(c, status) {
    try {
      await ctx.api.put(`/v1/campaigns/${encodeURIComponent(c.id)}`, campaignBody(c, { status }));
      toast(t(status === "live" ? "resumed" : "paused_done", { id: c.id }), "ok");
      await load();
    } catch (err) {
      toast(err.detail || err.message, "error");
    }
  }

  async function openForm(existing) {
    const [offers, fences] = await Promise.all([ctx.api.get("/v1/offers"), ctx.api.get("/v1/geofences")]);
    const form = campaignForm(ctx, {
      existing,
      offers: offers.offers,
      fences: fences.features,
      onSaved: async (c) => {
        toast(t("saved", { name: c.name || c.id }), "ok");
        clear(side);
        await load();
      },
      onCancel: () => clear(side),
    });
    clear(side).append(form);
    form.scrollIntoView({ block: "start" });
  }

  function openBacktest(c) {
    const day = 86400000;
    const iso = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    const since = h("input", {
      type: "datetime-local",
      name: "since",
      value: iso(new Date(Date.now() - 7 * day)),
    });
    const until = h("input", {
      type: "datetime-local",
      name: "until",
      value: iso(new Date(Date.now() + 60000)),
    });
    const out = h("div", { class: "backtest-out", id: "backtest-out" });
    const run = h("button", { class: "primary", type: "submit", id: "backtest-run" }, t("backtest_run"));
    const form = h(
      "form",
      { class: "card", id: "backtest-form" },
      h("h2", {}, t("backtest_of", { id: c.name || c.id })),
      h("p", { class: "form-error", role: "alert" }),
      h("div", { class: "grid2" }, field(t("since"), since, "since"), field(t("until"), until, "until")),
      h("div", { class: "row" }, run),
      out,
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      run.disabled = true;
      // the API answers once the replay is done: a bar and the seconds spent say it is working
      const started = performance.now();
      const elapsed = h("span", { class: "muted" }, "0 s");
      clear(out).append(
        h(
          "div",
          { class: "progress", id: "backtest-progress" },
          h("progress"),
          " ",
          t("backtest_running"),
          " ",
          elapsed,
        ),
      );
      const timer = setInterval(
        () => (elapsed.textContent = `${Math.round((performance.now() - started) / 1000)} s`),
        500,
      );
      try {
        const body = {
          since: new Date(since.value).toISOString(),
          until: new Date(until.value).toISOString(),
        };
        const res = await ctx.api.post(`/v1/campaigns/${encodeURIComponent(c.id)}/backtest`, body);
        clear(out).append(backtestResult(res));
      } catch (err) {
        clear(out).append(h("p", { class: "error" }, err.detail || err.message));
      } finally {
        clearInterval(timer);
        run.disabled = false;
      }
    });
    clear(side).append(form);
    form.scrollIntoView({ block: "start" });
  }

  function backtestResult(r) {
    const kv = (obj) =>
      Object.entries(obj)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => [k, fmtNum(v)]);
    const days = Object.keys(r.by_day).sort();
    return h(
      "div",
      { class: "backtest-result" },
      h(
        "div",
        { class: "stats" },
        [
          ["events_read", r.events_read],
          ["events", r.events],
          ["offers", r.offers],
        ].map(([k, v]) =>
          h(
            "div",
            { class: "stat" },
            h("span", { class: "stat-value" }, fmtNum(v)),
            h("span", { class: "stat-label" }, t(`bt_${k}`)),
          ),
        ),
      ),
      barChart(
        days.map((d) => ({ label: d.slice(5), values: { offers: r.by_day[d] } })),
        [{ key: "offers", label: t("bt_offers"), color: "#2563eb" }],
        { title: t("bt_by_day") },
      ),
      h(
        "div",
        { class: "tables" },
        [
          ["by_outcome", r.by_outcome],
          ["by_reason", r.by_reason],
          ["by_channel", r.by_channel],
          ["by_store", r.by_store],
          ["by_offer", r.by_offer],
        ].map(([k, obj]) => h("div", {}, h("h3", {}, t(`bt_${k}`)), table([t("key"), t("count")], kv(obj)))),
      ),
      h("p", { class: "muted" }, t("bt_speed", { s: r.seconds.toFixed(2), rate: fmtNum(r.events_per_s) })),
    );
  }

  await load();
}
