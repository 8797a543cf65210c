// The console's shell: sign-in, navigation between pages (#/map, #/devices, ...), language.
// Each page module exports mount(root, ctx) and may return an unmount function.
import { ApiError } from "./api.js";
import { h, clear, field, toast } from "./dom.js";
import { t, setLang, getLang, applyStatic } from "./i18n.js";
import { savedKey, forget, signIn, SignInError } from "./session.js";
import * as mapPage from "./map_page.js";
import * as devicesPage from "./devices_page.js";
import * as presencePage from "./presence_page.js";
import * as campaignsPage from "./campaigns_page.js";
import * as resultsPage from "./results_page.js";
import * as decisionsPage from "./decisions_page.js";

const PAGES = [
  { id: "map", page: mapPage, admin: false },
  { id: "devices", page: devicesPage, admin: false },
  { id: "presence", page: presencePage, admin: false },
  { id: "campaigns", page: campaignsPage, admin: true },
  { id: "results", page: resultsPage, admin: true },
  { id: "decisions", page: decisionsPage, admin: true },
];

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content || "";
// ctx: what every page gets. Exposed on window for the browser tests (map projection).
const ctx = {
  api: null,
  admin: false,
  stores: [],
  tileUrl: meta("geo-engine-tile-url"),
  tileAttribution: meta("geo-engine-tile-attribution"),
};
window.geoConsole = ctx;

const view = document.getElementById("view");
let unmount = null;

function showSignIn(errorKey) {
  document.getElementById("nav").hidden = true;
  document.getElementById("signout").hidden = true;
  document.getElementById("who").textContent = "";
  const input = h("input", { type: "password", id: "signin-key", autocomplete: "off", required: true });
  const error = h("p", { class: "error", id: "signin-error", role: "alert" }, errorKey ? t(errorKey) : "");
  const form = h(
    "form",
    { class: "card signin", id: "signin-form" },
    h("h1", {}, t("signin_title")),
    h("p", { class: "muted" }, t("signin_help")),
    field(t("api_key"), input, "key"),
    error,
    h("button", { class: "primary", type: "submit" }, t("sign_in")),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      await start(input.value.trim());
    } catch (err) {
      error.textContent = err instanceof SignInError ? t(err.code) : err.message;
    }
  });
  clear(view).append(form);
  input.focus();
}

async function start(key) {
  const session = await signIn(key, () => signOut("signin_expired"));
  Object.assign(ctx, session);
  document.getElementById("who").textContent = t(ctx.admin ? "role_admin" : "role_staff", {
    n: ctx.stores.length,
  });
  document.getElementById("signout").hidden = false;
  renderNav();
  if (!location.hash || location.hash === "#/") location.hash = "#/map";
  else route();
}

function renderNav() {
  const nav = clear(document.getElementById("nav"));
  for (const p of PAGES) {
    if (p.admin && !ctx.admin) continue;
    nav.append(h("a", { href: `#/${p.id}`, id: `nav-${p.id}` }, t(`nav_${p.id}`)));
  }
  nav.hidden = false;
}

let current = null; // the page being mounted (a later route replaces it)

function route() {
  if (!ctx.api) return;
  const [id, ...rest] = location.hash.replace(/^#\//, "").split("/");
  const entry = PAGES.find((p) => p.id === id && (!p.admin || ctx.admin)) || PAGES[0];
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.id === `nav-${entry.id}`);
  }
  if (unmount) unmount();
  unmount = null;
  const root = clear(view);
  root.dataset.page = entry.id;
  delete root.dataset.ready;
  const mounting = (current = {});
  Promise.resolve(entry.page.mount(root, ctx, rest.map(decodeURIComponent)))
    .then((fn) => {
      const done = typeof fn === "function" ? fn : null;
      if (mounting !== current) {
        if (done) done(); // left before it finished loading: undone at once
        return;
      }
      unmount = done;
      root.dataset.ready = "true"; // the page has loaded what it shows (the tests wait for it)
    })
    .catch((err) => {
      // the API's refusals are the user's to read; anything else is a bug: on the console too,
      // with its stack (and the browser tests fail on it)
      if (!(err instanceof ApiError)) console.error(err);
      toast(err.detail || err.message, "error");
    });
}

window.addEventListener("hashchange", route);

function signOut(reason) {
  if (!ctx.api) return;
  forget();
  if (unmount) unmount();
  unmount = null;
  Object.assign(ctx, { api: null, admin: false, stores: [] });
  history.replaceState(null, "", location.pathname);
  showSignIn(reason);
}

document.getElementById("signout").addEventListener("click", () => signOut());

const langSelect = document.getElementById("lang");
langSelect.value = getLang();
langSelect.addEventListener("change", () => {
  setLang(langSelect.value);
  applyStatic(document);
  if (ctx.api) {
    renderNav();
    document.getElementById("who").textContent = t(ctx.admin ? "role_admin" : "role_staff", {
      n: ctx.stores.length,
    });
    route();
  } else showSignIn();
});

setLang(getLang());
applyStatic(document);
const key = savedKey();
if (key) start(key).catch(() => (forget(), showSignIn("signin_expired")));
else showSignIn();
