// Live presence of one store: customers inside now, today's enters / dwells / exits, and per
// fence. Aggregates only (the API gives nothing else here): no customer is ever named.
// Updates arrive over server-sent events, read with fetch (the key goes in a header).
import { h, clear, field, select, table, fmtNum, fmtDate } from "./dom.js";
import { t } from "./i18n.js";

// the store's own fence first, then its zones by name
const storeFirst = (a, b) => (b.kind === "store") - (a.kind === "store") || a.name.localeCompare(b.name);

export async function mount(root, ctx, [wanted]) {
  const storeSel = select(
    ctx.stores.map((s) => [s.store_id, s.name || s.store_id]),
    wanted || ctx.stores[0]?.store_id,
    { id: "presence-store" },
  );
  const state = h("span", { class: "live-state", id: "presence-state" }, t("connecting"));
  const body = h("div", { id: "presence" });
  root.append(
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, t("nav_presence")),
      field(t("store"), storeSel, "store"),
      state,
    ),
    body,
  );

  let abort = null;
  function watch() {
    if (abort) abort.abort();
    abort = new AbortController();
    const store = storeSel.value;
    clear(body);
    if (!store) return body.append(h("p", { class: "muted" }, t("no_store")));
    const path = `/v1/stores/${encodeURIComponent(store)}/presence`;
    // the first figures at once, then every change as it happens
    ctx.api
      .get(path)
      .then(render)
      .catch((err) => body.replaceChildren(h("p", { class: "error" }, err.detail || err.message)));
    ctx.api.stream(
      `${path}/stream`,
      (type, data) => {
        if (type === "presence") render(data);
        else if (type === "error")
          state.textContent = t("stream_error", { reason: data?.detail || String(data) });
      },
      {
        signal: abort.signal,
        onState: (s, err) => {
          state.className = `live-state ${s}`;
          state.textContent = s === "refused" ? err.detail : t(`stream_${s}`);
        },
      },
    );
  }

  function render(p) {
    const today = p.today || {};
    const tile = (id, label, value) =>
      h(
        "div",
        { class: `stat ${id}` },
        h("span", { class: "stat-value", id: `presence-${id}` }, fmtNum(value)),
        h("span", { class: "stat-label" }, label),
      );
    body.replaceChildren(
      h(
        "div",
        { class: "stats" },
        tile("inside", t("inside_now"), p.inside),
        tile("enter", t("today_enter"), today.enter),
        tile("dwell", t("today_dwell"), today.dwell),
        tile("exit", t("today_exit"), today.exit),
      ),
      h("h2", {}, t("by_fence")),
      table(
        [t("name"), t("kind"), t("inside_now")],
        [...(p.fences || [])]
          .sort(storeFirst)
          .map((f) =>
            h(
              "tr",
              { "data-fence": f.geofence_id },
              h("td", {}, f.name),
              h("td", {}, t(`kind_${f.kind}`)),
              h("td", { class: "num" }, fmtNum(f.inside)),
            ),
          ),
      ),
      h("p", { class: "muted" }, t("updated_at", { at: fmtDate(p.at) })),
    );
  }

  storeSel.addEventListener("change", watch);
  watch();
  return () => abort && abort.abort();
}
