// The unit's local API (/api/v1) as the UI uses it: session cookie plus CSRF header.

const BASE = "/api/v1";
const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
let csrfToken = null;
let onUnauthorized = () => {};

/** An error reply of the API: {code, message, field, retry_after} plus the HTTP status. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || (status === 0 ? "network" : "http");
    this.field = error.field || null;
    this.retryAfter = error.retry_after ?? null;
    this.triesLeft = error.tries_left ?? null;
  }
}

export function setCsrfToken(token) {
  csrfToken = token;
}

/** Called once whenever the API says the session is gone (expired, logged out elsewhere). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

export async function request(method, path, body = undefined, { quietAuth = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (UNSAFE.has(method) && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, { error: { code: "network", message: String(err) } });
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (error.retryAfter === null) {
      const header = Number(response.headers.get("Retry-After"));
      if (Number.isFinite(header) && header > 0) error.retryAfter = header;
    }
    if (response.status === 401 && error.code === "unauthorized" && !quietAuth) onUnauthorized();
    throw error;
  }
  return data;
}

export const api = {
  info: () => request("GET", "/info"),
  limits: () => request("GET", "/limits"),
  session: () => request("GET", "/session", undefined, { quietAuth: true }),
  login: (pin) => request("POST", "/session", { pin }, { quietAuth: true }),
  logout: () => request("DELETE", "/session", undefined, { quietAuth: true }),
  state: () => request("GET", "/state"),
  status: () => request("GET", "/status"),
  settings: () => request("GET", "/settings"),
  patchSettings: (patch) => request("PATCH", "/settings", patch),
  changePin: (pin) => request("POST", "/pin", { pin }),
  clients: () => request("GET", "/clients"),
  revokeClient: (id) => request("DELETE", `/clients/${encodeURIComponent(id)}`),
  reboot: () => request("POST", "/system/reboot"),
  factoryReset: () => request("POST", "/system/factory-reset", { confirm: true }),
  emulator: () => request("GET", "/emulator"),
  setEmulator: (body) => request("POST", "/emulator", body),
  emulatedChargers: () => request("GET", "/emulator/chargers"),
  setEmulatedCharger: (id, body) =>
    request("POST", `/emulator/chargers/${encodeURIComponent(id)}`, body),
  balancing: () => request("GET", "/balancing"),
  balancingEvents: (query) => request("GET", `/balancing/events?${query}`),
  chargers: () => request("GET", "/chargers"),
  acceptCharger: (id) => request("POST", `/chargers/${encodeURIComponent(id)}/accept`),
  forgetCharger: (id) => request("DELETE", `/chargers/${encodeURIComponent(id)}`),
  patchChargerSettings: (id, spec) =>
    request("PATCH", `/chargers/${encodeURIComponent(id)}/settings`, spec),
  overrideCharger: (id, body) => request("POST", `/chargers/${encodeURIComponent(id)}/override`, body),
  pauseCharger: (id) => request("POST", `/chargers/${encodeURIComponent(id)}/pause`),
  resumeCharger: (id) => request("POST", `/chargers/${encodeURIComponent(id)}/resume`),
};
