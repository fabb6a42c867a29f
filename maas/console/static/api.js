// The console speaks to the same API as every other client: a bearer token from POST /sessions,
// JSON bodies, problem+json errors. The token lives in this tab's sessionStorage only.

const TOKEN_KEY = "maas.console.token";

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.retryAfter = retryAfter;
  }
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// {data, headers, status}; ApiError for an answer of 400 and above, TypeError when the server is unreachable.
export async function call(path, { method = "GET", body, params, headers = {}, anonymous = false } = {}) {
  const sent = { Accept: "application/json, application/problem+json", ...headers };
  if (!anonymous && session.token) sent.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const response = await fetch(`${path}${query(params)}`, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 300) };
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data, response.headers.get("Retry-After") ?? undefined);
    if (response.status === 401 && !anonymous) document.dispatchEvent(new CustomEvent("signedout", { detail: error }));
    throw error;
  }
  return { data, headers: response.headers, status: response.status };
}

export async function get(path, params) {
  return (await call(path, { params })).data;
}

export async function post(path, body, headers) {
  return (await call(path, { method: "POST", body, headers })).data;
}

export function idempotencyKey() {
  return crypto.randomUUID();
}
