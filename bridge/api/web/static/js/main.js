// The admin UI's entry point: language, login and session, tabs and the live feed.

import { api, setCsrfToken, setUnauthorizedHandler } from "./api.js";
import { fillBalancing, setupBalancingForm } from "./balancing.js";
import {
  balancingEvent,
  closeChargers,
  detectBalancing,
  openChargers,
  pendingCount,
  refresh as refreshChargers,
  renderBalancing,
  rerenderChargers,
  setupChargers,
} from "./chargers.js";
import { setMessage } from "./forms.js";
import {
  initLanguage,
  language,
  limitParams,
  onLanguageChange,
  refreshTexts,
  setLanguage,
  t,
} from "./i18n.js";
import {
  detectEmulator,
  limitsArrived,
  loadEmulator,
  rerenderEmulator,
  setupEmulator,
} from "./emulator.js";
import { fillInstallation, rerenderInstallation, setupInstallationForm } from "./installation.js";
import { applyLimits, loadLimits, outsideLimits } from "./limits.js";
import { renderMeter, rerenderMeter } from "./meter.js";
import { LiveFeed } from "./push.js";
import {
  renderInfo,
  renderLiveMode,
  renderReadings,
  renderStatus,
  rerenderStatus,
  settingsWritten,
} from "./status.js";
import { loadClients, renderIdentity, rerenderSystem, setupSystem } from "./system.js";
import { fillWifi, renderWifiState, rerenderWifi, setupWifiForm } from "./wifi.js";

const $ = (id) => document.getElementById(id);
// Every tab; a hidden one (the Emulator tab of a real unit) is left out.
const ALL_TABS = ["status", "chargers", "wifi", "installation", "system", "emulator"];
const tabs = () => ALL_TABS.filter((tab) => !$(`tab-${tab}`).hidden);
// setTimeout holds at most about 24 days; a session never lives that long.
const MAX_TIMER_MS = 2 ** 31 - 1;
// The meter's counts and last telegram change with every telegram; a status push comes
// only when its link or error changes, so the open Installation tab asks now and then.
const METER_REFRESH_MS = 2000;

let currentTab = "status";
let loggedIn = false;
let lockoutTimer = null;
let expiryTimer = null;
let meterTimer = null;

const feed = new LiveFeed({
  onReadings: renderReadings,
  onStatus: (status) => {
    renderStatus(status);
    renderMeter(status);
    if (status && "wifi" in status) renderWifiState(status.wifi);
    if (status && status.balancing) pendingCount(status.balancing.pending);
  },
  onSettings: (settings) => {
    settingsWritten();
    applySettings(settings);
  },
  onBalancing: renderBalancing,
  onBalancingEvent: balancingEvent,
  onPoll: () => {
    if (currentTab === "chargers") refreshChargers();
  },
  onMode: renderLiveMode,
  onRevoked: () => {
    if (loggedIn) showLogin("session_expired");
  },
});

// Forms the user has typed in since they were last filled or saved.
const dirty = new Set();

function applySettings(settings) {
  // What the user is typing is never wiped by values that arrive meanwhile: a push from
  // another client, a Wi-Fi rollback, or a load that answers after the typing began.
  fillWifi(settings, { keepInput: dirty.has("wifi-form") });
  if (!dirty.has("installation-form")) fillInstallation(settings);
  if (!dirty.has("balancing-form")) fillBalancing(settings);
}

function trackDirty() {
  for (const id of ["wifi-form", "installation-form", "balancing-form"]) {
    const form = $(id);
    form.addEventListener("input", () => dirty.add(id));
    form.addEventListener("change", () => dirty.add(id));
    // Saved values come back in the reply and are filled in: nothing pending any more.
    form.addEventListener("submit", () => dirty.delete(id));
  }
}

async function loadSettings() {
  try {
    applySettings(await api.settings());
  } catch {
    // 401 is handled centrally; other failures leave the last values shown.
  }
}

// ---- tabs -----------------------------------------------------------------------------

function selectTab(name, { focus = false } = {}) {
  currentTab = tabs().includes(name) ? name : "status";
  for (const tab of ALL_TABS) {
    const button = $(`tab-${tab}`);
    const selected = tab === currentTab;
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    $(`panel-${tab}`).hidden = !selected;
  }
  if (focus) $(`tab-${currentTab}`).focus();
  if (window.location.hash !== `#${currentTab}`) {
    window.history.replaceState(null, "", `#${currentTab}`);
  }
  if (currentTab === "wifi" || currentTab === "installation") loadSettings();
  if (currentTab === "system") loadClients();
  if (currentTab === "emulator") loadEmulator();
  if (currentTab === "chargers") openChargers();
  else closeChargers();
  watchMeter(currentTab === "installation");
}

async function refreshMeter() {
  try {
    renderMeter(await api.status());
  } catch {
    // 401 is handled centrally; otherwise the last values stay until the next try.
  }
}

function watchMeter(on) {
  clearInterval(meterTimer);
  meterTimer = null;
  if (!on || !loggedIn) return;
  refreshMeter();
  meterTimer = setInterval(refreshMeter, METER_REFRESH_MS);
}

function setupTabs() {
  for (const tab of ALL_TABS) {
    $(`tab-${tab}`).addEventListener("click", () => selectTab(tab));
  }
  // Arrow keys move between tabs, as the ARIA tabs pattern expects.
  document.querySelector(".tabs").addEventListener("keydown", (event) => {
    const shown = tabs();
    const index = shown.indexOf(currentTab);
    const moves = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: shown.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    selectTab(shown[(moves[event.key] + shown.length) % shown.length], { focus: true });
  });
  window.addEventListener("hashchange", () => selectTab(window.location.hash.slice(1)));
}

// ---- session --------------------------------------------------------------------------

function scheduleExpiry(expires) {
  clearTimeout(expiryTimer);
  const at = typeof expires === "number" ? expires * 1000 : Date.parse(expires);
  if (!Number.isFinite(at)) return;
  expiryTimer = setTimeout(checkSession, Math.min(Math.max(at - Date.now() + 1000, 1000), MAX_TIMER_MS));
}

function startSession(reply) {
  setCsrfToken(reply.csrf_token);
  scheduleExpiry(reply.expires);
  showApp();
}

function showLogin(messageKey = null, kind = "error") {
  loggedIn = false;
  dirty.clear(); // the next session starts from the unit's values
  feed.stop();
  watchMeter(false);
  setCsrfToken(null);
  clearTimeout(expiryTimer);
  $("app-view").hidden = true;
  $("logout").hidden = true;
  $("login-view").hidden = false;
  const message = $("login-message");
  setMessage(message, messageKey ? t(messageKey) : "", messageKey ? kind : "");
  $("login-pin").value = "";
  $("login-pin").focus();
}

async function showApp() {
  loggedIn = true;
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  $("logout").hidden = false;
  setMessage($("login-message"), "");
  feed.start();
  // Only an emulated unit has the Emulator tab (it answers GET /emulator).
  $("tab-emulator").hidden = !(await detectEmulator());
  // Only a unit with the balancing service has the Chargers tab.
  $("tab-chargers").hidden = !(await detectBalancing());
  selectTab(window.location.hash.slice(1) || currentTab);
  $(`tab-${currentTab}`).focus();
  try {
    const info = await api.info();
    renderInfo(info);
    renderIdentity(info);
  } catch {
    // The identity stays "–" until the next login; nothing else depends on it.
  }
  loadSettings();
}

async function checkSession() {
  try {
    startSession(await api.session());
  } catch (err) {
    if (err.status === 0) {
      showLogin("unreachable");
    } else {
      showLogin(loggedIn ? "session_expired" : null);
    }
  }
}

function lockOut(seconds) {
  const button = $("login-submit");
  const message = $("login-message");
  let left = Math.ceil(seconds);
  button.disabled = true;
  clearInterval(lockoutTimer);
  const tick = () => {
    if (left <= 0) {
      clearInterval(lockoutTimer);
      button.disabled = false;
      setMessage(message, "");
      return;
    }
    setMessage(message, t("login_locked_out", { seconds: left }), "error");
    left -= 1;
  };
  tick();
  lockoutTimer = setInterval(tick, 1000);
}

/** "Wrong PIN", and how many more the unit takes before it locks this address out. */
function wrongPinWords(triesLeft) {
  if (triesLeft === null) return t("login_wrong_pin");
  const left = triesLeft === 1 ? t("login_one_try_left") : t("login_tries_left", { count: triesLeft });
  return `${t("login_wrong_pin")} ${left}`;
}

function setupLogin() {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = $("login-message");
    const pin = $("login-pin").value.trim();
    // The PIN's form is the unit's rule (served limits); unknown, the unit judges it.
    if (!pin || outsideLimits($("login-pin"))) {
      setMessage(message, t("field.pin", limitParams("pin")), "error");
      $("login-pin").setAttribute("aria-invalid", "true");
      return;
    }
    $("login-submit").disabled = true;
    let locked = false;
    try {
      startSession(await api.login(pin));
      $("login-pin").removeAttribute("aria-invalid");
    } catch (err) {
      $("login-pin").value = "";
      if (err.status === 429 || err.code === "locked_out") {
        locked = true;
        lockOut(err.retryAfter ?? 60);
        return;
      }
      $("login-pin").setAttribute("aria-invalid", "true");
      if (err.code === "invalid_pin") setMessage(message, wrongPinWords(err.triesLeft), "error");
      else if (err.status === 0) setMessage(message, t("unreachable"), "error");
      else setMessage(message, t("login_failed", { message: err.message }), "error");
    } finally {
      if (!locked) $("login-submit").disabled = false;
    }
    $("login-pin").focus();
  });
  $("logout").addEventListener("click", async () => {
    try {
      await api.logout();
    } catch {
      // Logged out either way: the session is forgotten here too.
    }
    showLogin("logged_out", "ok");
  });
}

// ---- start ----------------------------------------------------------------------------

function setupLanguage() {
  const select = $("language");
  select.value = language();
  select.addEventListener("change", () => setLanguage(select.value));
  onLanguageChange((lang) => {
    select.value = lang;
    rerenderStatus();
    rerenderMeter();
    rerenderWifi();
    rerenderInstallation();
    rerenderSystem();
    rerenderEmulator();
    rerenderChargers();
  });
}

/** Take the forms' limits from the unit (public, so before login too). Without them the
 *  forms work as well and the unit still refuses what is out of bounds, at the field. */
async function setupLimits() {
  if (!(await loadLimits())) return;
  applyLimits(document);
  limitsArrived();
  refreshTexts();
}

function start() {
  initLanguage();
  setupLimits();
  setupLanguage();
  setupTabs();
  trackDirty();
  setupLogin();
  setupWifiForm();
  setupInstallationForm();
  setupEmulator();
  setupBalancingForm();
  setupChargers();
  // A factory reset ends every session: back to the login, saying why.
  setupSystem(() => showLogin("reset_login", "ok"));
  setUnauthorizedHandler(() => {
    if (loggedIn) showLogin("session_expired");
  });
  checkSession();
}

start();
