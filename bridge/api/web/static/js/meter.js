// The Installation tab's meter card: which meter the unit reads, and how that goes.

import { formatNumber, formatTime, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

let lastStatus = null;

function seconds(value) {
  // Whole seconds read better, but a 0.5 s poll must not say "every 1 s".
  return formatNumber(value, Number.isInteger(value) ? 0 : 1);
}

function sourceText(meter) {
  const kind = t(`source.${meter.source}`);
  const name = kind === `source.${meter.source}` ? meter.source : kind;
  return meter.meter ? `${name}: ${meter.meter}` : name;
}

function lastMessageText(meter) {
  if (!meter.last_message) return t("never");
  const age = Math.max(0, Math.round((Date.now() - Date.parse(meter.last_message)) / 1000));
  return t("meter_last_message_value", {
    time: formatTime(meter.last_message),
    seconds: formatNumber(age, 0),
  });
}

/** Show the status reply's meter health (also its "not applicable" lights). */
export function renderMeter(status) {
  if (status) lastStatus = status;
  const s = lastStatus;
  if (!s || !s.meter) return;
  const meter = s.meter;
  $("meter-source").textContent = sourceText(meter);
  $("meter-address").textContent = meter.address || "–";
  $("meter-link").textContent = t(meter.connected ? "meter_link_up" : "meter_link_down");
  $("meter-link").dataset.connected = String(Boolean(meter.connected));
  $("meter-last-message").textContent = lastMessageText(meter);
  $("meter-interval").textContent = t("meter_interval_value", { seconds: seconds(meter.interval) });
  $("meter-counts").textContent = t("meter_counts_value", {
    received: formatNumber(meter.received, 0),
    errors: formatNumber(meter.errors, 0),
  });
  $("meter-last-error").textContent = meter.last_error || t("meter_no_error");
  $("meter-pairing").hidden = !meter.pairing;
  $("meter-not-applicable").hidden = s.current.state !== "not_applicable";
}

export function rerenderMeter() {
  renderMeter(null);
}
