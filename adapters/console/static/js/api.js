// The public API, called with the signed-in key. The console has no other way to read or
// change anything: what a key may do is decided by the server, here we only show its answer.

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.detail || `HTTP ${status}`);
    this.status = status;
    this.detail = body?.detail || `HTTP ${status}`;
    // [{field, reason, index?}]: the API's one error shape
    this.errors = Array.isArray(body?.errors) ? body.errors : [];
  }
}

// onUnauthorized: called on a 401 (the key was revoked while the page was open)
export function createApi(key, { onUnauthorized = () => {} } = {}) {
  const headers = { Authorization: `Bearer ${key}` };

  async function call(method, path, body) {
    const init = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    if (res.status === 204) return null;
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = { detail: text };
    }
    if (res.status === 401) onUnauthorized();
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  // Server-sent events read with fetch: EventSource cannot send an Authorization header.
  // Reconnects (1 s, then up to 15 s) until `signal` aborts; onState tells the page.
  function stream(path, onEvent, { signal, onState = () => {} } = {}) {
    let delay = 1000;
    const run = async () => {
      while (!signal.aborted) {
        try {
          const res = await fetch(path, { headers: { ...headers, Accept: "text/event-stream" }, signal });
          if (!res.ok) {
            if (res.status === 401) onUnauthorized();
            const body = await res.json().catch(() => null);
            throw new ApiError(res.status, body);
          }
          onState("live");
          delay = 1000;
          await readEvents(res.body, onEvent);
        } catch (err) {
          if (signal.aborted) return;
          if (err instanceof ApiError && (err.status === 401 || err.status === 403 || err.status === 404)) {
            onState("refused", err);
            return; // retrying cannot help
          }
        }
        if (signal.aborted) return;
        onState("reconnecting");
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 15000);
      }
    };
    run();
  }

  return {
    get: (p) => call("GET", p),
    post: (p, b) => call("POST", p, b ?? {}),
    put: (p, b) => call("PUT", p, b),
    del: (p) => call("DELETE", p),
    stream,
  };
}

// One SSE frame per blank line: "event: x" and "data: ..." lines; ": ..." is a comment
// (the server's keepalive).
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = "message";
      const data = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith(":")) continue;
        const [name, ...rest] = line.split(":");
        const v = rest.join(":").replace(/^ /, "");
        if (name === "event") type = v;
        else if (name === "data") data.push(v);
      }
      if (data.length) {
        let parsed;
        try {
          parsed = JSON.parse(data.join("\n"));
        } catch {
          parsed = data.join("\n");
        }
        onEvent(type, parsed);
      }
    }
  }
}

// The url-encoded query string of the given non-empty params.
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : "";
}
