// The Chargers tab: the controller now (mode, each phase's room and trip budget, the site
// cap), each managed charger live (what it draws per phase against its limit, its state,
// the last decision and why, non-compliance), a user's holds (override, pause, resume),
// its settings and Forget; the chargers asking to be managed; and the event log with
// its filters and CSV download. Live through the push channel's balancing messages.

import { api } from "./api.js";
import {
  clearFieldErrors,
  confirmAction,
  reportLimits,
  setMessage,
  showApiError,
  showFieldError,
  whileBusy,
} from "./forms.js";
import { formatDateTime, formatNumber, formatTime, t, translateTree } from "./i18n.js";
import { applyLimits } from "./limits.js";
import { unitWords } from "./unitwords.js";

const $ = (id) => document.getElementById(id);
const GRID_PHASES = ["L1", "L2", "L3"];
// What the event log's kind filter offers (the API's EventKind, in its order).
export const EVENT_KINDS = [
  "limit",
  "pause",
  "resume",
  "phase_switch",
  "fail_safe",
  "fail_safe_end",
  "non_compliant",
  "compliant",
  "budget_warning",
  "budget_cut",
  "trip_cut",
  "cap",
  "off",
  "on",
  "accepted",
  "forgotten",
  "command_failed",
  "override",
  "override_end",
  "user_pause",
  "user_resume",
];
// The log shows the newest this many; the CSV download has every kept event.
const EVENTS_SHOWN = 100;

let state = null; // the last GET /balancing reply or balancing push message
let pending = []; // chargers asking to be managed (GET /chargers)
let events = []; // the log as shown, newest first
let active = false; // the tab is open
let cardCount = 0; // numbers the cards' element ids (charger ids may hold any character)
const cards = new Map(); // charger id -> {root, dirty}

// ---- the controller now ------------------------------------------------------------------

function modeWords(s) {
  const mode = t(`mode_${s.mode}`);
  return s.reason ? t("mode_reason", { mode, reason: unitWords(s.reason) }) : mode;
}

function renderPhases(s) {
  const body = document.querySelector("#balancing-phases tbody");
  const rows = s.phases.map((phase) => {
    const row = document.createElement("tr");
    row.dataset.phase = phase.phase;
    row.dataset.zone = phase.zone;
    const cells = [
      phase.phase,
      formatNumber(phase.current, 1),
      formatNumber(phase.room, 1),
      phase.zone === "normal"
        ? formatNumber(phase.budget, 0)
        : `${formatNumber(phase.budget, 0)} (${t(`zone_${phase.zone}`)})`,
    ];
    cells.forEach((text, i) => {
      const cell = document.createElement(i === 0 ? "th" : "td");
      if (i === 0) cell.scope = "row";
      else cell.className = "num";
      cell.textContent = text;
      row.append(cell);
    });
    return row;
  });
  body.replaceChildren(...rows);
  const cap = $("balancing-cap");
  cap.hidden = !s.cap;
  cap.textContent = s.cap
    ? t("cap_state", {
        cap: formatNumber(s.cap.cap, 1),
        window: s.cap.window,
        imported: formatNumber(s.cap.imported, 2),
        projected: formatNumber(s.cap.projected, 1),
      })
    : "";
}

// ---- one charger ----------------------------------------------------------------------

/** A fresh card from the template, its ids, labels and descriptions made unique. */
function newCard(charger) {
  cardCount += 1;
  const prefix = `charger-${cardCount}`;
  const root = $("charger-template").content.firstElementChild.cloneNode(true);
  root.dataset.charger = charger.id;
  root.id = prefix;
  for (const element of root.querySelectorAll("[data-id]")) element.id = `${prefix}-${element.dataset.id}`;
  for (const label of root.querySelectorAll("[data-for]")) label.htmlFor = `${prefix}-${label.dataset.for}`;
  for (const element of root.querySelectorAll("[data-describedby]")) {
    const ids = element.dataset.describedby.split(" ").map((id) => `${prefix}-${id}`);
    element.setAttribute("aria-describedby", ids.join(" "));
  }
  const title = root.querySelector('[data-role="title"]');
  title.id = `${prefix}-title`;
  root.setAttribute("aria-labelledby", title.id);
  const card = { root, dirty: false, spec: null };
  applyLimits(root);
  translateTree(root);
  setupCard(card, charger.id);
  return card;
}

function role(card, name) {
  return card.root.querySelector(`[data-role="${name}"]`);
}

/** The grid phase of each of the charger's own phases: rotation L2-L3-L1 puts its L1 on L2. */
function gridPhases(spec) {
  return spec.rotation.split("-").slice(0, spec.phases);
}

function renderBars(card, charger) {
  const { spec } = charger;
  const body = role(card, "phases");
  const grid = gridPhases(spec);
  const rows = grid.map((gridPhase, i) => {
    // The unit told it how many phases to use (a switch to one phase uses its L1 only).
    const limit = charger.limit === null ? null : i < charger.phases ? charger.limit : 0;
    const draw = charger.currents[i];
    const row = document.createElement("tr");
    row.dataset.phase = gridPhase;
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = spec.phases === 1 ? gridPhase : `${gridPhase} (L${i + 1})`;
    const drawCell = document.createElement("td");
    drawCell.className = "num";
    drawCell.dataset.value = "draw";
    drawCell.textContent = formatNumber(draw, 1);
    const limitCell = document.createElement("td");
    limitCell.className = "num";
    limitCell.dataset.value = "limit";
    limitCell.textContent = formatNumber(limit, 1);
    const barCell = document.createElement("td");
    barCell.className = "bar-cell";
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.setAttribute("role", "img");
    bar.setAttribute(
      "aria-label",
      t("bar_label", { phase: gridPhase, draw: formatNumber(draw, 1), limit: formatNumber(limit, 1) }),
    );
    // Widths against the charger's max; set through the CSSOM, which the CSP allows.
    const scale = Math.max(spec.max_current, draw ?? 0, limit ?? 0) || 1;
    const limitBar = document.createElement("span");
    limitBar.className = "bar-limit";
    limitBar.style.width = `${(100 * (limit ?? 0)) / scale}%`;
    const drawBar = document.createElement("span");
    drawBar.className = "bar-draw";
    drawBar.style.width = `${(100 * Math.max(draw ?? 0, 0)) / scale}%`;
    if (limit !== null && draw !== null && draw > limit + 1) drawBar.dataset.over = "true";
    bar.append(limitBar, drawBar);
    barCell.append(bar);
    row.append(name, drawCell, limitCell, barCell);
    return row;
  });
  body.replaceChildren(...rows);
}

function wiringWords(spec) {
  return t(`charger_wiring_${spec.phases}`, { phase: gridPhases(spec)[0] });
}

/** When a hold ends: its time today, else its date and time. */
function untilWords(iso) {
  const ends = new Date(iso);
  return ends.toDateString() === new Date().toDateString() ? formatTime(iso) : formatDateTime(iso);
}

function renderHold(card, charger) {
  const hold = role(card, "hold");
  let words = "";
  if (charger.user_paused) words = t("hold_paused");
  else if (charger.override !== null && charger.override !== undefined) {
    words = t("hold_override", {
      current: formatNumber(charger.override, 1),
      until: untilWords(charger.override_until),
    });
  }
  hold.hidden = !words;
  hold.textContent = words;
  role(card, "resume").hidden = !words;
  const current = card.root.querySelector('input[name="current"]');
  current.min = String(charger.spec.min_current);
  current.max = String(charger.spec.max_current);
  if (!current.value && document.activeElement !== current) {
    current.value = String(charger.override ?? charger.spec.min_current);
  }
}

function setChecked(form, name, value) {
  for (const input of form.querySelectorAll(`input[name="${name}"]`)) {
    input.checked = input.value === String(value);
  }
}

function fillSettings(card, spec) {
  const form = role(card, "settings");
  form.elements.name.value = spec.name;
  setChecked(form, "phases", spec.phases);
  form.elements.rotation.value = spec.rotation;
  form.elements.min_current.value = String(spec.min_current);
  form.elements.max_current.value = String(spec.max_current);
  form.elements.fail_safe_current.value = String(spec.fail_safe_current);
  form.elements.priority.value = String(spec.priority);
  form.elements.can_switch_phases.checked = spec.can_switch_phases;
  card.dirty = false;
}

function renderCard(card, charger) {
  const { spec } = charger;
  role(card, "title").textContent = spec.name;
  const badge = role(card, "state");
  badge.textContent = t(`charger_state_${charger.state}`);
  badge.dataset.state = charger.state;
  role(card, "meta").textContent = t("charger_meta", {
    id: charger.id,
    provider: charger.provider,
    wiring: wiringWords(spec),
    priority: spec.priority,
  });
  const warning = role(card, "noncompliant");
  warning.hidden = charger.compliant;
  warning.textContent = charger.compliant ? "" : t("charger_noncompliant", { name: spec.name });
  card.root.dataset.compliant = String(charger.compliant);
  renderBars(card, charger);
  role(card, "decided").textContent =
    charger.limit === null
      ? "–"
      : t("charger_decision_value", {
          limit: formatNumber(charger.limit, 1),
          phases: t(`phases_${charger.phases === 1 ? 1 : 3}`),
          time: charger.decided_at ? formatTime(charger.decided_at) : "–",
        });
  role(card, "reason").textContent = t("charger_reason", { reason: unitWords(charger.reason) });
  renderHold(card, charger);
  role(card, "forget").setAttribute("aria-label", t("forget_label", { name: spec.name }));
  // A spec changed elsewhere is shown, unless the user is typing in the form.
  if (!card.dirty && JSON.stringify(card.spec) !== JSON.stringify(spec)) fillSettings(card, spec);
  card.spec = spec;
}

function chargerNamed(id) {
  return state?.chargers.find((charger) => charger.id === id) ?? null;
}

/** Read the settings form into a ChargerSpec; null (errors at their fields) if unusable. */
function specOf(form) {
  const numbers = {};
  let usable = true;
  for (const name of ["min_current", "max_current", "fail_safe_current", "priority"]) {
    const raw = form.elements[name].value.trim();
    numbers[name] = Number(raw);
    if (raw === "" || !Number.isFinite(numbers[name])) {
      showFieldError(form, name, "");
      usable = false;
    }
  }
  const phases = form.querySelector('input[name="phases"]:checked');
  if (!usable || !phases) return null;
  return {
    name: form.elements.name.value.trim(),
    phases: Number(phases.value),
    rotation: form.elements.rotation.value,
    ...numbers,
    can_switch_phases: form.elements.can_switch_phases.checked,
  };
}

function setupCard(card, id) {
  const settings = role(card, "settings");
  settings.addEventListener("input", () => {
    card.dirty = true;
  });
  settings.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(settings);
    const message = settings.querySelector(".form-message");
    setMessage(message, "");
    const spec = reportLimits(settings) ? specOf(settings) : null;
    if (!spec) {
      setMessage(message, t("fix_fields"), "error");
      return;
    }
    await whileBusy(settings.querySelector("button[type=submit]"), async () => {
      try {
        const saved = await api.patchChargerSettings(id, spec);
        fillSettings(card, saved);
        card.spec = saved;
        setMessage(message, t("saved"), "ok");
        await refresh();
      } catch (err) {
        showApiError(settings, message, err);
      }
    });
  });

  const hold = role(card, "hold-form");
  const holdMessage = hold.querySelector(".form-message");
  const act = async (button, action, done) => {
    clearFieldErrors(hold);
    setMessage(holdMessage, "");
    await whileBusy(button, async () => {
      try {
        const info = await action();
        // The reply is the charger now: its hold shows at once, the rest follows.
        renderCard(card, info);
        setMessage(holdMessage, done(info), "ok");
        await refresh();
      } catch (err) {
        showApiError(hold, holdMessage, err);
      }
    });
  };
  hold.addEventListener("submit", async (event) => {
    event.preventDefault();
    const charger = chargerNamed(id);
    const input = hold.elements.current;
    const current = Number(input.value.trim());
    const outside =
      input.value.trim() === "" ||
      !Number.isFinite(current) ||
      (charger && (current < charger.spec.min_current || current > charger.spec.max_current));
    if (outside) {
      clearFieldErrors(hold);
      showRange(hold, charger);
      setMessage(holdMessage, t("fix_fields"), "error");
      return;
    }
    const duration = Number(hold.elements.duration.value);
    await act(
      role(card, "override"),
      () => api.overrideCharger(id, { current, duration }),
      (info) =>
        t("override_done", {
          name: info.spec.name,
          current: formatNumber(info.override ?? current, 1),
          until: untilWords(info.override_until),
        }),
    );
    // The unit's refusal of a current names this charger's own range.
    if (hold.querySelector(".invalid")) showRange(hold, chargerNamed(id));
  });
  role(card, "pause").addEventListener("click", () =>
    act(role(card, "pause"), () => api.pauseCharger(id), (info) => t("pause_done", { name: info.spec.name })),
  );
  role(card, "resume").addEventListener("click", () =>
    act(role(card, "resume"), () => api.resumeCharger(id), (info) => t("resume_done", { name: info.spec.name })),
  );

  role(card, "forget").addEventListener("click", async () => {
    const name = chargerNamed(id)?.spec.name ?? id;
    const sure = await confirmAction({
      title: t("forget_confirm_title", { name }),
      text: t("forget_confirm_text"),
      ok: t("forget"),
    });
    if (!sure) return;
    try {
      await api.forgetCharger(id);
      setMessage($("chargers-message"), t("forgotten", { name }), "ok");
      await refresh();
      $("panel-chargers").focus();
    } catch (err) {
      if (err.status !== 401) setMessage($("chargers-message"), t("request_failed", { message: err.message }), "error");
    }
  });
}

/** Say the override's range (the charger's own least and most) at the current field. */
function showRange(form, charger) {
  const field = form.querySelector('[data-field="current"]');
  field.classList.add("invalid");
  const input = field.querySelector("input");
  input.setAttribute("aria-invalid", "true");
  field.querySelector(".field-error").textContent = charger
    ? t("override_range", {
        minimum: formatNumber(charger.spec.min_current, 0),
        maximum: formatNumber(charger.spec.max_current, 0),
      })
    : t("fix_fields");
  input.focus();
}

function renderChargers(s) {
  const container = $("charger-cards");
  const seen = new Set();
  for (const charger of s.chargers) {
    seen.add(charger.id);
    let card = cards.get(charger.id);
    if (!card) {
      card = newCard(charger);
      cards.set(charger.id, card);
    }
    renderCard(card, charger);
  }
  for (const [id, card] of cards) {
    if (!seen.has(id)) {
      card.root.remove();
      cards.delete(id);
    }
  }
  // In the unit's order, moving only a card out of place: a moved element loses the focus.
  let before = null;
  for (const charger of s.chargers) {
    const { root } = cards.get(charger.id);
    const expected = before ? before.nextElementSibling : container.firstElementChild;
    if (root !== expected) {
      if (before) before.after(root);
      else container.prepend(root);
    }
    before = root;
  }
  $("chargers-empty").hidden = s.chargers.length > 0;
}

// ---- pending --------------------------------------------------------------------------

function renderPending() {
  $("pending-card").hidden = pending.length === 0;
  const items = pending.map((charger) => {
    const item = document.createElement("li");
    item.className = "client";
    item.dataset.charger = charger.id;
    const text = document.createElement("div");
    const name = document.createElement("strong");
    name.textContent = charger.details.name || charger.id;
    const meta = document.createElement("small");
    meta.textContent = t("pending_meta", {
      provider: charger.provider,
      details: Object.entries(charger.details)
        .filter(([key]) => key !== "name")
        .map(([, value]) => value)
        .join(", ") || charger.id,
      minutes: formatNumber(charger.waiting / 60, 0),
    });
    text.append(name, meta);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button-primary";
    button.textContent = t("accept");
    button.setAttribute("aria-label", t("accept_label", { name: name.textContent }));
    button.addEventListener("click", () =>
      whileBusy(button, async () => {
        try {
          const info = await api.acceptCharger(charger.id);
          setMessage($("chargers-message"), t("accepted", { name: info.spec.name }), "ok");
          await refresh();
        } catch (err) {
          if (err.status !== 401) {
            setMessage($("chargers-message"), t("request_failed", { message: err.message }), "error");
          }
        }
      }),
    );
    item.append(text, button);
    return item;
  });
  $("pending-list").replaceChildren(...items);
}

// ---- the event log --------------------------------------------------------------------

function filters() {
  return { kind: $("events-kind").value, charger: $("events-charger").value };
}

function eventsQuery({ csv = false } = {}) {
  const query = new URLSearchParams();
  const { kind, charger } = filters();
  if (kind) query.set("kind", kind);
  if (charger) query.set("charger", charger);
  if (csv) query.set("format", "csv");
  else query.set("limit", String(EVENTS_SHOWN));
  return query.toString();
}

function buildKindFilter() {
  const select = $("events-kind");
  const chosen = select.value;
  select.replaceChildren(
    new Option(t("events_all_kinds"), ""),
    ...EVENT_KINDS.map((kind) => new Option(t(`event.${kind}`), kind)),
  );
  select.value = chosen;
}

function buildChargerFilter() {
  const select = $("events-charger");
  const chosen = select.value;
  const options = [new Option(t("events_all_chargers"), "")];
  const known = new Set();
  for (const charger of state?.chargers ?? []) {
    known.add(charger.id);
    options.push(new Option(`${charger.spec.name} (${charger.id})`, charger.id));
  }
  // A forgotten charger's events stay in the log, and the filter keeps it while chosen.
  if (chosen && !known.has(chosen)) options.push(new Option(chosen, chosen));
  const same =
    select.options.length === options.length &&
    options.every((option, i) => select.options[i].value === option.value && select.options[i].text === option.text);
  if (same) return;
  select.replaceChildren(...options);
  select.value = chosen;
}

function eventItem(event) {
  const item = document.createElement("li");
  item.dataset.kind = event.kind;
  if (event.charger) item.dataset.charger = event.charger;
  const time = document.createElement("time");
  time.dateTime = event.time;
  time.textContent = formatDateTime(event.time);
  const kind = document.createElement("span");
  kind.className = "event-kind";
  kind.textContent = t(`event.${event.kind}`);
  const message = document.createElement("span");
  message.className = "event-message";
  message.textContent = unitWords(event.message);
  item.append(time, " ", kind, " ", message);
  return item;
}

function renderEvents() {
  $("events-list").replaceChildren(...events.map(eventItem));
  $("events-empty").hidden = events.length > 0;
  $("events-csv").href = `/api/v1/balancing/events?${eventsQuery({ csv: true })}`;
}

async function loadEvents() {
  try {
    const reply = await api.balancingEvents(eventsQuery());
    events = [...reply.events].reverse();
  } catch {
    // 401 is handled centrally; otherwise the last events stay shown.
  }
  renderEvents();
}

function matches(event) {
  const { kind, charger } = filters();
  return (!kind || event.kind === kind) && (!charger || event.charger === charger);
}

// ---- entry points ---------------------------------------------------------------------

/** The controller's state, from GET /balancing or a balancing push message. */
export function renderBalancing(reply) {
  if (reply) state = reply;
  const s = state;
  if (!s) return;
  $("balancing-mode").textContent = modeWords(s);
  $("balancing-mode").dataset.mode = s.mode;
  renderPhases(s);
  renderChargers(s);
  buildChargerFilter();
}

/** A new event of the log (pushed): shown at the top when it passes the filters. */
export function balancingEvent(event) {
  if (["accepted", "forgotten"].includes(event.kind)) loadPending();
  if (!matches(event)) return;
  events = [event, ...events].slice(0, EVENTS_SHOWN);
  if (active) renderEvents();
}

async function loadPending() {
  try {
    pending = (await api.chargers()).pending;
  } catch {
    return;
  }
  renderPending();
}

/** Read everything again (the tab opens, or the user changed something). */
export async function refresh() {
  try {
    const [balancing, list] = await Promise.all([api.balancing(), api.chargers()]);
    pending = list.pending;
    renderBalancing(balancing);
    renderPending();
  } catch {
    // 401 is handled centrally; otherwise the last state stays shown.
  }
}

/** Whether this unit balances chargers (shows the tab), from GET /balancing. */
export async function detectBalancing() {
  try {
    const reply = await api.balancing();
    renderBalancing(reply);
    return reply.service === "running";
  } catch {
    return false;
  }
}

/** The pending count changed (status push): read the list again. */
export function pendingCount(count) {
  if (count !== pending.length) loadPending();
}

export async function openChargers() {
  active = true;
  await Promise.all([refresh(), loadEvents()]);
}

export function closeChargers() {
  active = false;
}

export function rerenderChargers() {
  buildKindFilter();
  for (const card of cards.values()) translateTree(card.root);
  renderBalancing(null);
  renderPending();
  renderEvents();
}

export function setupChargers() {
  buildKindFilter();
  buildChargerFilter();
  $("events-kind").addEventListener("change", loadEvents);
  $("events-charger").addEventListener("change", loadEvents);
  renderEvents();
}
