// Sign-in: the key lives in this tab's sessionStorage only (gone when the tab closes; never
// in localStorage or a cookie). What the key may do is learnt from the API's own answers.
import { createApi } from "./api.js";

const STORAGE = "geo-engine.console.key";

export function savedKey() {
  return sessionStorage.getItem(STORAGE);
}

export function forget() {
  sessionStorage.removeItem(STORAGE);
}

export class SignInError extends Error {
  constructor(code) {
    super(code);
    this.code = code; // an i18n key: signin_bad_key, signin_role
  }
}

// -> {api, admin, stores: [{store_id, name, fences, center}]}; onRevoked: a later 401
export async function signIn(key, onRevoked) {
  let signedIn = false;
  const api = createApi(key, { onUnauthorized: () => signedIn && onRevoked() });
  let stores;
  try {
    stores = (await api.get("/v1/stores")).stores;
  } catch (err) {
    if (err.status === 401) throw new SignInError("signin_bad_key");
    if (err.status === 403) throw new SignInError("signin_role"); // ingest, gateway keys
    throw err;
  }
  // the admin pages (campaigns, results, decisions) are the API's admin routes: a 403 here
  // is the API saying this key is staff
  let admin = true;
  try {
    await api.get("/v1/campaigns?status=live");
  } catch (err) {
    if (err.status !== 403) throw err;
    admin = false;
  }
  sessionStorage.setItem(STORAGE, key);
  signedIn = true;
  return { api, admin, stores };
}
