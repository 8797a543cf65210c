// Small DOM helpers. Everything from the API goes in as text (textContent), never as HTML:
// a fence or campaign name is data typed by someone else.

// h("button", {class: "primary", onclick: fn, "data-field": "id"}, "Save", child...)
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = !!v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// A labelled form control; `field` is the API's field path, where its 422 is shown.
export function field(label, control, fieldPath) {
  const wrap = h(
    "label",
    { class: "field", "data-field": fieldPath },
    h("span", { class: "label" }, label),
    control,
  );
  wrap.append(h("span", { class: "field-error", role: "alert" }));
  return wrap;
}

export function select(options, value, attrs = {}) {
  const el = h("select", attrs);
  for (const o of options) {
    const [v, label] = Array.isArray(o) ? o : [o, o];
    el.append(h("option", { value: v, selected: String(v) === String(value) }, label));
  }
  return el;
}

export function table(headers, rows, attrs = {}) {
  return h(
    "table",
    { class: "grid", ...attrs },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        headers.map((x) => h("th", {}, x)),
      ),
    ),
    h(
      "tbody",
      {},
      rows.map((r) =>
        r instanceof Node
          ? r
          : h(
              "tr",
              {},
              r.map((c) => h("td", {}, c)),
            ),
      ),
    ),
  );
}

export function fmtNum(n, digits = 0) {
  if (n === null || n === undefined) return "—";
  return Number(n).toLocaleString(document.documentElement.lang, {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

export function fmtDate(iso) {
  if (!iso) return "—";
  const d = typeof iso === "number" ? new Date(iso * 1000) : new Date(iso);
  return d.toLocaleString(document.documentElement.lang, { dateStyle: "short", timeStyle: "medium" });
}

let toastTimer;
export function toast(message, kind = "info") {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = `toast ${kind}`;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), 4000);
}
