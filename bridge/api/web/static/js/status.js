// The Status tab: the unit's lights, live per-phase values and the unit's state.

import { formatNumber, formatTime, t } from "./i18n.js";
import { wifiStateText } from "./wifi.js";

const $ = (id) => document.getElementById(id);
const LIGHTS = new Set(["green", "blue", "red", "off"]);

let lastReadings = null;
let lastStatus = null;
let lastInfo = null;

function setLight(name, light, words) {
  const dot = $(`light-${name}`);
  dot.dataset.light = LIGHTS.has(light) ? light : "off";
  $(`light-${name}-words`).textContent = words;
}

/** Words for an indicator: the phases at fault when known, else the overall state. */
function indicatorWords(kind, indicator) {
  const faults = [];
  for (const [phase, state] of Object.entries(indicator.phases || {})) {
    if (state === "ok" || state === "indeterminate") continue;
    faults.push(t(`phase_${kind}_${state}`, { phase }));
  }
  if (faults.length === 0) return t(`${kind}_${indicator.state}`);
  return `${t(`colour_${indicator.light}`)}: ${faults.join("; ")}`;
}

function cloudText(cloud) {
  if (!cloud || !cloud.enabled) return t("cloud_disabled");
  const parts = [t(cloud.connected ? "cloud_connected" : "cloud_disconnected")];
  if (cloud.backlog) parts.push(t("cloud_backlog", { count: cloud.backlog }));
  if (cloud.error) parts.push(cloud.error);
  return parts.join(" · ");
}

function setupApText(ap) {
  if (!ap || !ap.active) return t("setup_ap_inactive");
  return t("setup_ap_active", { ssid: ap.ssid, minutes: ap.minutes_left });
}

function networkText(status) {
  // The Wi-Fi manager knows more than the light; without it, say what the light says.
  return status.wifi ? wifiStateText(status.wifi) : t(`comm_${status.communication}`);
}

function sequenceText(voltage) {
  if (voltage.state === "ok") return t("sequence_ok");
  if (voltage.state === "wrong_phase_sequence") return t("sequence_wrong");
  return t("sequence_unknown");
}

export function renderStatus(status) {
  if (status) lastStatus = status;
  const s = lastStatus;
  if (!s) return;
  setLight("logo", s.power ? "green" : "off", t(s.power ? "logo_on" : "logo_off"));
  setLight("communication", s.communication_light, t(`comm_${s.communication}`));
  setLight("voltage", s.voltage.light, indicatorWords("voltage", s.voltage));
  setLight("current", s.current.light, indicatorWords("current", s.current));
  $("phase-sequence").textContent = sequenceText(s.voltage);
  $("network-state").textContent = networkText(s);
  $("cloud-state").textContent = cloudText(s.cloud);
  $("setup-ap-state").textContent = setupApText(s.setup_ap);
  const settingsError = $("settings-error");
  settingsError.hidden = !s.settings_error;
  settingsError.textContent = s.settings_error ? t("settings_unusable", { error: s.settings_error }) : "";
}

/** A settings write replaces an unusable file: the unit clears the warning then too. */
export function settingsWritten() {
  if (lastStatus && lastStatus.settings_error) {
    lastStatus = { ...lastStatus, settings_error: null };
    renderStatus(null);
  }
}

export function renderReadings(readings) {
  if (readings) lastReadings = readings;
  const r = lastReadings;
  if (!r) return;
  const message = $("meter-message");
  if (!r.available || !r.reading) {
    message.hidden = false;
    message.textContent = t("meter_unavailable", { error: r.error || "–" });
  } else {
    message.hidden = true;
  }
  const reading = r.reading;
  for (const row of document.querySelectorAll("#phases tbody tr")) {
    const phase = reading ? reading.phases.find((p) => p.phase === row.dataset.phase) : null;
    const cell = (name) => row.querySelector(`[data-value="${name}"]`);
    cell("current").textContent = phase ? formatNumber(phase.current, 2) : "–";
    cell("voltage").textContent = phase ? formatNumber(phase.voltage, 1) : "–";
    cell("power").textContent = phase ? formatNumber(phase.power, 0) : "–";
    cell("available_current").textContent = phase ? formatNumber(phase.available_current, 1) : "–";
    row.classList.toggle("exporting", Boolean(phase && phase.current < 0));
  }
  $("total-power").textContent = reading ? `${formatNumber(reading.total_power, 0)} W` : "–";
  $("frequency").textContent = reading ? `${formatNumber(reading.frequency, 2)} Hz` : "–";
  $("last-update").textContent = reading ? formatTime(reading.timestamp) : "–";
  $("phases").dataset.sequence = reading ? String(reading.sequence) : "";
}

export function renderInfo(info) {
  if (info) lastInfo = info;
  const i = lastInfo;
  if (!i) return;
  $("status-serial").textContent = i.serial;
  $("status-firmware").textContent = i.firmware;
}

export function renderLiveMode(mode) {
  $("live-dot").dataset.live = mode;
  const key = { live: "live_connected", polling: "live_polling" }[mode] || "live_connecting";
  $("live-words").dataset.i18n = key;
  $("live-words").textContent = t(key);
}

/** Redraw everything in the current language. */
export function rerenderStatus() {
  renderStatus(null);
  renderReadings(null);
  renderInfo(null);
}
