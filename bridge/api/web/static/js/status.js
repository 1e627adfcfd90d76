// The Status tab: the unit's lights, live per-phase values and the unit's state.

import { formatList, formatNumber, formatTime, t } from "./i18n.js";
import { wifiStateText } from "./wifi.js";

const $ = (id) => document.getElementById(id);
const LIGHTS = new Set(["green", "blue", "red", "off"]);

let lastReadings = null;
let lastStatus = null;
let lastInfo = null;
let receivedAt = 0; // when the last readings arrived (ms since the epoch)
// The age shown grows between readings, once a second.
const AGE_TICK_MS = 1000;
setInterval(() => {
  if (lastReadings) renderAge();
}, AGE_TICK_MS);

function setLight(name, light, words) {
  const dot = $(`light-${name}`);
  dot.dataset.light = LIGHTS.has(light) ? light : "off";
  $(`light-${name}-words`).textContent = words;
}

/** The phases of an indicator in ``state``, or whose reason is ``reason``. */
function phasesWhere(indicator, test) {
  return Object.keys(indicator.phases || {}).filter((phase) =>
    test((indicator.phases || {})[phase], (indicator.reasons || {})[phase]),
  );
}

/** What is wrong with the voltages: swapped phases as one fact, the rest per phase. */
function voltageParts(voltage) {
  const parts = [];
  const swapped = phasesWhere(voltage, (state, reason) => reason === "swapped");
  if (swapped.length) parts.push(t("voltage_reason_swapped", { phases: formatList(swapped) }));
  const misplaced = phasesWhere(voltage, (state, reason) => reason === "misplaced");
  if (misplaced.length) parts.push(t("voltage_reason_misplaced", { phases: formatList(misplaced) }));
  const missing = phasesWhere(voltage, (state) => state === "not_connected");
  if (missing.length) parts.push(t("phase_voltage_not_connected", { phase: formatList(missing) }));
  return parts;
}

/** What is wrong with the CTs, and which of them have nothing to be judged against. */
function currentParts(current) {
  const parts = [];
  for (const phase of phasesWhere(current, (state) => state === "wrong_phase_sequence" || state === "reversed")) {
    parts.push(t(`phase_current_${current.phases[phase]}`, { phase }));
  }
  const silent = phasesWhere(current, (state) => state === "not_connected");
  if (silent.length) parts.push(t("phase_current_not_connected", { phase: formatList(silent) }));
  const noReference = phasesWhere(current, (state, reason) => reason === "no_voltage_reference");
  if (noReference.length) {
    parts.push(t("current_reason_no_voltage_reference", { phases: formatList(noReference) }));
  }
  return parts;
}

/** Words for an indicator: what is at fault and where when known, else its state. */
function indicatorWords(kind, indicator, meterAvailable) {
  if (!meterAvailable) return t("light_no_reading");
  const parts = kind === "voltage" ? voltageParts(indicator) : currentParts(indicator);
  if (parts.length === 0 && kind === "current" && indicator.state === "indeterminate") {
    parts.push(t(`current_reason_${indicator.reason || "low_current"}`));
  }
  if (parts.length === 0) return t(`${kind}_${indicator.state}`);
  return `${t(`colour_${indicator.light}`)}: ${parts.join("; ")}`;
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

/** What the unit is connected by (its interfaces with an address), and its Wi-Fi. */
function networkText(status) {
  const by = status.connected_by || [];
  const wifi = status.wifi ? wifiStateText(status.wifi) : null;
  const connection = by.length ? t("network_through", { interfaces: formatList(by) }) : t("network_none");
  return wifi ? `${connection} · ${wifi}` : connection;
}

function communicationWords(status) {
  const by = status.connected_by || [];
  if (status.communication === "network" && by.length) {
    return t("comm_network_through", { interfaces: formatList(by) });
  }
  return t(`comm_${status.communication}`);
}

function sequenceText(voltage) {
  if (voltage.state === "ok") return t("sequence_ok");
  if (voltage.state === "wrong_phase_sequence") {
    return t(voltage.reason === "swapped" ? "sequence_swapped" : "sequence_wrong");
  }
  if (voltage.state === "not_applicable") return t("sequence_not_applicable");
  return t("sequence_unknown");
}

/** Load balancing in a line: its mode, how many chargers it manages, who asks or strays. */
function balancingText(balancing) {
  if (!balancing) return t("balancing_not_running");
  const parts = [t("balancing_summary", { mode: t(`mode_${balancing.mode}`), count: balancing.chargers })];
  if (balancing.pending) parts.push(t("balancing_summary_pending", { count: balancing.pending }));
  const strays = (balancing.non_compliant || []).length;
  if (strays) parts.push(t("balancing_summary_noncompliant", { count: strays }));
  return parts.join(" · ");
}

export function renderStatus(status) {
  if (status) lastStatus = status;
  const s = lastStatus;
  if (!s) return;
  setLight("logo", s.power ? "green" : "off", t(s.power ? "logo_on" : "logo_off"));
  setLight("communication", s.communication_light, communicationWords(s));
  const meter = s.meter_available !== false;
  setLight("voltage", s.voltage.light, indicatorWords("voltage", s.voltage, meter));
  setLight("current", s.current.light, indicatorWords("current", s.current, meter));
  $("phase-sequence").textContent = sequenceText(s.voltage);
  $("network-state").textContent = networkText(s);
  $("cloud-state").textContent = cloudText(s.cloud);
  $("setup-ap-state").textContent = setupApText(s.setup_ap);
  $("balancing-status").textContent = balancingText(s.balancing);
  const settingsError = $("settings-error");
  settingsError.hidden = !s.settings_error;
  settingsError.textContent = s.settings_error ? t("settings_unusable", { error: s.settings_error }) : "";
  const storageError = $("storage-error");
  storageError.hidden = !s.storage_error;
  storageError.textContent = s.storage_error ? t("storage_failing", { error: s.storage_error }) : "";
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
  let frequency = "–";
  if (reading) {
    // A meter that gives no frequency (P1) says so rather than showing a number.
    frequency =
      reading.frequency === null ? t("not_measured") : `${formatNumber(reading.frequency, 2)} Hz`;
  }
  $("frequency").textContent = frequency;
  $("last-update").textContent = reading ? formatTime(reading.timestamp) : "–";
  if (readings) receivedAt = Date.now();
  renderAge();
  $("phases").dataset.sequence = reading ? String(reading.sequence) : "";
}

/** The reading's age as the unit said it, grown by the time since it said so: a meter
 *  that falls silent shows an age that keeps growing. */
function renderAge() {
  const r = lastReadings;
  const known = r && typeof r.age === "number";
  const seconds = known ? r.age + (Date.now() - receivedAt) / 1000 : null;
  $("reading-age").textContent = known
    ? t("reading_age_value", { seconds: formatNumber(seconds, seconds < 10 ? 1 : 0) })
    : "–";
  $("reading-age").dataset.stale = String(Boolean(r && r.stale));
  const stale = $("stale-message");
  stale.hidden = !(r && r.stale);
  stale.textContent = stale.hidden ? "" : t("reading_stale", { seconds: formatNumber(seconds, 0) });
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
