// The System tab: identity, reboot, factory reset, PIN change and paired clients.

import { api } from "./api.js";
import {
  clearFieldErrors,
  confirmAction,
  setMessage,
  showApiError,
  showFieldError,
  whileBusy,
} from "./forms.js";
import { formatDateTime, t } from "./i18n.js";
import { outsideLimits } from "./limits.js";

const $ = (id) => document.getElementById(id);
let lastClients = [];
let afterReset = () => {};

export function renderIdentity(info) {
  $("info-name").textContent = info.name || "–";
  $("info-model").textContent = info.model;
  $("info-serial").textContent = info.serial;
  $("info-firmware").textContent = info.firmware;
  $("info-api").textContent = info.api_version;
}

function renderClients() {
  const list = $("clients");
  list.replaceChildren();
  $("clients-empty").hidden = lastClients.length > 0;
  for (const client of lastClients) {
    const item = document.createElement("li");
    item.className = "client";
    item.dataset.clientId = client.id;
    const text = document.createElement("div");
    const name = document.createElement("strong");
    name.textContent = client.name;
    const meta = document.createElement("small");
    meta.textContent = t("client_meta", {
      created: formatDateTime(client.created),
      last_seen: formatDateTime(client.last_seen),
    });
    text.append(name, meta);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button-secondary";
    button.textContent = t("revoke");
    button.setAttribute("aria-label", t("revoke_label", { name: client.name }));
    button.addEventListener("click", () => revoke(client));
    item.append(text, button);
    list.append(item);
  }
}

export async function loadClients() {
  try {
    const reply = await api.clients();
    lastClients = reply.clients;
    renderClients();
  } catch (err) {
    setMessage($("clients-message"), t("request_failed", { message: err.message }), "error");
  }
}

async function revoke(client) {
  const ok = await confirmAction({
    title: t("revoke_confirm_title", { name: client.name }),
    text: t("revoke_confirm_text"),
    ok: t("revoke"),
  });
  if (!ok) return;
  const message = $("clients-message");
  try {
    await api.revokeClient(client.id);
    setMessage(message, t("revoked", { name: client.name }), "ok");
  } catch (err) {
    setMessage(message, t("request_failed", { message: err.message }), "error");
  }
  await loadClients();
  $("clients-title").focus();
}

async function reboot() {
  const ok = await confirmAction({
    title: t("reboot_confirm_title"),
    text: t("reboot_confirm_text"),
    ok: t("reboot"),
  });
  if (!ok) return;
  const message = $("system-message");
  await whileBusy($("reboot"), async () => {
    try {
      await api.reboot();
      setMessage(message, t("rebooting"), "ok");
    } catch (err) {
      setMessage(message, t("request_failed", { message: err.message }), "error");
    }
  });
}

async function factoryReset() {
  const ok = await confirmAction({
    title: t("reset_confirm_title"),
    text: t("reset_confirm_text"),
    ok: t("factory_reset"),
  });
  if (!ok) return;
  const message = $("system-message");
  await whileBusy($("factory-reset"), async () => {
    try {
      await api.factoryReset();
      setMessage(message, t("reset_done"), "ok");
      await afterReset();
    } catch (err) {
      setMessage(message, t("request_failed", { message: err.message }), "error");
    }
  });
}

function setupPinForm() {
  const form = $("pin-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    const message = $("pin-message");
    setMessage(message, "");
    const pin = $("new-pin").value;
    // The PIN's form is the unit's rule (served limits); unknown, the unit judges it.
    if (!pin || outsideLimits($("new-pin"))) {
      showFieldError(form, "pin", "");
      return;
    }
    if ($("confirm-pin").value !== pin) {
      form.querySelector('[data-field="pin_confirm"]').classList.add("invalid");
      $("confirm-pin-error").textContent = t("pin_mismatch");
      $("confirm-pin").setAttribute("aria-invalid", "true");
      $("confirm-pin").focus();
      return;
    }
    await whileBusy(form.querySelector("button[type=submit]"), async () => {
      try {
        await api.changePin(pin);
        form.reset();
        setMessage(message, t("pin_changed"), "ok");
      } catch (err) {
        showApiError(form, message, err);
      }
    });
  });
}

/** ``onReset`` runs after a factory reset (settings and clients are gone: reload them). */
export function setupSystem(onReset) {
  afterReset = onReset;
  $("reboot").addEventListener("click", reboot);
  $("factory-reset").addEventListener("click", factoryReset);
  setupPinForm();
}

export function rerenderSystem() {
  renderClients();
}
