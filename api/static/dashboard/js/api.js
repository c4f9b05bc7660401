// The REST API, with the browser's key. URLs are relative to the page, so the
// dashboard works behind a proxy that serves the gateway under a path prefix.

const KEY_ITEM = "officegw.apiKey";

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }

  /** What to tell a person, in a few words. */
  get summary() {
    if (this.status === 0) return "gateway unreachable";
    if (this.status === 401) return "the key was refused";
    if (this.status === 403) return "not allowed for this key";
    if (this.status === 404) return "not available on this gateway";
    if (this.status === 429) return "too many failed keys from this address; wait a minute";
    return typeof this.detail === "string" ? this.detail : `error ${this.status}`;
  }
}

/** The API key, kept for the browser session only (never in localStorage). */
export const keys = {
  get() {
    return sessionStorage.getItem(KEY_ITEM);
  },
  set(key) {
    sessionStorage.setItem(KEY_ITEM, key);
  },
  forget() {
    sessionStorage.removeItem(KEY_ITEM);
  },
};

export function authHeaders() {
  const key = keys.get();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function url(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value === null || value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) query.append(name, String(item));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

// Called with the error of every request the key made fail (401), so the page can ask for one.
let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

async function request(method, path, { params, body } = {}) {
  const headers = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url(path, params), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, "gateway unreachable");
  }
  let data = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data && data.detail !== undefined ? data.detail : null);
    if (response.status === 401) onUnauthorized(error);
    throw error;
  }
  return data;
}

export const api = {
  get: (path, params) => request("GET", path, { params }),
  post: (path, body, params) => request("POST", path, { body, params }),
};

/** Every page of a cursor-paged list (`after` / `next_after`), at most `pages` of them. */
export async function allPages(path, field, params = {}, pages = 20) {
  const items = [];
  let after = params.after || 0;
  for (let page = 0; page < pages; page += 1) {
    const data = await api.get(path, { ...params, after, limit: 1000 });
    items.push(...data[field]);
    if (data[field].length < 1000 || data.next_after === after) break;
    after = data.next_after;
  }
  return items;
}
