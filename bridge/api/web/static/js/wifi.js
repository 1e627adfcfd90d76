// The Wi-Fi tab: the customer network's SSID and passphrase, and the result of applying it.

import { api } from "./api.js";
import {
  clearFieldErrors,
  reportLimits,
  setMessage,
  showApiError,
  showFieldError,
  whileBusy,
} from "./forms.js";
import { t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
let savedSsid = "";
let passphraseSet = false;
let lastWifiState = null;

/** Words for the Wi-Fi component's published state (see docs/web-ui.md). */
export function wifiStateText(state) {
  if (!state) return t("wifi_state_unknown");
  switch (state.state) {
    case "idle":
      return t("wifi_state_idle");
    case "connecting":
      return t("wifi_state_connecting", { ssid: state.ssid });
    case "connected":
      return t("wifi_state_connected", { ssid: state.ssid });
    case "rolled_back":
      return t("wifi_state_rolled_back", { ssid: state.ssid, failed: state.failed_ssid });
    case "failed":
      return t("wifi_state_rolled_back_none", { failed: state.failed_ssid });
    default:
      return t("wifi_state_unknown");
  }
}

export function renderWifiState(state) {
  if (state !== undefined) lastWifiState = state;
  const result = $("wifi-result");
  result.textContent = wifiStateText(lastWifiState);
  result.dataset.state = lastWifiState ? lastWifiState.state : "";
}

function renderHint() {
  $("wifi-passphrase-hint").textContent = t(passphraseSet ? "wifi_passphrase_set" : "wifi_passphrase_unset");
}

/** Fill the form from the settings reply; the passphrase itself never comes back. */
export function fillWifi(settings, { keepInput = false } = {}) {
  savedSsid = settings.wifi.ssid;
  passphraseSet = settings.wifi.passphrase_set;
  if (!keepInput) {
    $("wifi-ssid").value = savedSsid;
    $("wifi-passphrase").value = "";
  }
  renderHint();
}

export function rerenderWifi() {
  renderHint();
  renderWifiState(undefined);
}

export function setupWifiForm() {
  const form = $("wifi-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    const message = $("wifi-message");
    setMessage(message, "");
    const ssid = $("wifi-ssid").value;
    const passphrase = $("wifi-passphrase").value;
    const within = reportLimits(form);
    if (!ssid) showFieldError(form, "wifi.ssid", "");
    if (!ssid || !within) {
      setMessage(message, t("fix_fields"), "error");
      return;
    }
    const wifi = { ssid };
    // An empty box keeps the stored password for the same network; a new network without
    // one is an open network.
    if (passphrase || ssid !== savedSsid || !passphraseSet) wifi.passphrase = passphrase;
    await whileBusy(form.querySelector("button[type=submit]"), async () => {
      try {
        const settings = await api.patchSettings({ wifi });
        fillWifi(settings);
        setMessage(message, t("wifi_saved"));
      } catch (err) {
        showApiError(form, message, err);
      }
    });
  });
}
