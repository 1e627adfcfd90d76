// The Emulator tab (emulated units only): faults with their phase, loads per phase, an EV
// and PV, driven through POST /api/v1/emulator. Each control is one entry of CONTROLS and
// one card in index.html. The emulated chargers (load balancing) have a card of their own,
// shown when there are some, driven through POST /api/v1/emulator/chargers/{id}.
// Bounds and the fault names come from GET /api/v1/limits (its "emulator" block).

import { api } from "./api.js";
import { clearFieldErrors, reportLimits, setMessage, showApiError, whileBusy } from "./forms.js";
import { t, translateTree } from "./i18n.js";
import { applyLimits, limitOf } from "./limits.js";

const $ = (id) => document.getElementById(id);
const PHASES = ["L1", "L2", "L3"];
const NO_FAULT = "none";
const NO_CAR = "none";

let lastState = null;
let chargers = [];

function checkedValue(form, name) {
  const input = form.querySelector(`input[name="${name}"]:checked`);
  return input ? input.value : null;
}

function check(form, name, value) {
  for (const input of form.querySelectorAll(`input[name="${name}"]`)) {
    input.checked = input.value === String(value);
  }
}

/** A number box's value, or null (and the browser's own check fails) when empty. */
function numberOf(input) {
  const raw = input.value.trim();
  const value = Number(raw);
  return raw === "" || !Number.isFinite(value) ? null : value;
}

/** The fault choices, as the unit declares them (its served limits), with words for each. */
function buildFaults() {
  const container = $("emu-faults");
  const schema = limitOf("emulator.fault");
  const served = schema && Array.isArray(schema.enum) ? schema.enum.filter((name) => name) : [];
  container.replaceChildren();
  for (const name of [NO_FAULT, ...served]) {
    const label = document.createElement("label");
    label.className = "choice";
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "fault";
    input.value = name;
    const words = document.createElement("span");
    const title = document.createElement("span");
    title.dataset.i18n = `fault_${name}`;
    const hint = document.createElement("small");
    hint.dataset.i18n = `fault_${name}_hint`;
    words.append(title, hint);
    label.append(input, " ", words);
    container.append(label);
  }
  translateTree(container);
}

const CONTROLS = [
  {
    form: "emu-fault-form",
    fill(form, state) {
      check(form, "fault", state.fault ?? NO_FAULT);
      check(form, "fault_phase", state.fault_phase);
    },
    body(form) {
      const fault = checkedValue(form, "fault");
      const body = { fault: fault === NO_FAULT ? null : fault };
      const phase = checkedValue(form, "fault_phase");
      if (phase) body.fault_phase = phase;
      return body;
    },
  },
  {
    form: "emu-load-form",
    fill(form, state) {
      for (const phase of PHASES) form.elements[phase].value = String(state.load[phase] ?? 0);
    },
    body(form) {
      const load = {};
      for (const phase of PHASES) load[phase] = numberOf(form.elements[phase]);
      return Object.values(load).includes(null) ? null : { load };
    },
  },
  {
    form: "emu-ev-form",
    fill(form, state) {
      form.elements.current.value = String(state.ev.current);
      check(form, "ev_phases", state.ev.phases);
    },
    body(form) {
      const current = numberOf(form.elements.current);
      if (current === null) return null;
      return { ev: { current, phases: Number(checkedValue(form, "ev_phases") || 1) } };
    },
  },
  {
    form: "emu-pv-form",
    fill(form, state) {
      form.elements.pv.value = String(state.pv);
    },
    body(form) {
      const pv = numberOf(form.elements.pv);
      return pv === null ? null : { pv };
    },
  },
];

/** Show ``state`` in every card; ``keepEdited`` leaves a card the user is in as it is. */
function fillAll(state, { keepEdited = false } = {}) {
  lastState = state;
  for (const control of CONTROLS) {
    const form = $(control.form);
    if (keepEdited && form.contains(document.activeElement)) continue;
    control.fill(form, state);
  }
}

/** One emulated charger's state in words: what it offers and what its car draws. */
function chargerWords(charger) {
  const name = `${charger.spec.name} (${charger.id})`;
  const managed = t(charger.accepted ? "emu_charger_managed" : "emu_charger_pending");
  if (!charger.car) return t("emu_charger_no_car", { name, managed });
  const draw = charger.draw.slice(0, charger.spec.phases).map((amps) => String(amps)).join("/");
  return t("emu_charger_state", { name, managed, offered: String(charger.offered), draw });
}

/** Fill the chargers' card for the chosen charger (the card hides when there is none). */
function fillCharger({ keepEdited = false } = {}) {
  const form = $("emu-charger-form");
  const charger = chargers.find((item) => item.id === form.elements.charger.value);
  $("emu-charger-state").textContent = charger ? chargerWords(charger) : "";
  if (!charger || (keepEdited && form.contains(document.activeElement))) return;
  const car = charger.car;
  check(form, "car", car ? car.phases : NO_CAR);
  form.elements.max_current.value = String(car ? car.max_current : 16);
  form.elements.ignores_limits.checked = Boolean(car && car.ignores_limits);
  showCarDetails(form);
}

/** The car's own settings only matter with a car: off without one. */
function showCarDetails(form) {
  const none = checkedValue(form, "car") === NO_CAR;
  form.elements.max_current.disabled = none;
  form.elements.ignores_limits.disabled = none;
}

function showChargers(reply, options = {}) {
  chargers = reply.chargers;
  const card = $("emu-chargers-card");
  card.hidden = chargers.length === 0;
  const select = $("emu-charger");
  const chosen = select.value;
  select.replaceChildren(
    ...chargers.map((charger) => new Option(`${charger.spec.name} (${charger.id})`, charger.id)),
  );
  if (chargers.some((charger) => charger.id === chosen)) select.value = chosen;
  fillCharger(options);
}

async function loadChargers(options = {}) {
  try {
    showChargers(await api.emulatedChargers(), options);
  } catch {
    // No chargers to show (a unit without load balancing): the card stays hidden.
  }
}

function chargerBody(form) {
  const car = checkedValue(form, "car");
  if (car === null) return null;
  if (car === NO_CAR) return { car: null };
  const maxCurrent = numberOf(form.elements.max_current);
  if (maxCurrent === null) return null;
  return {
    car: { phases: Number(car), max_current: maxCurrent },
    ignores_limits: form.elements.ignores_limits.checked,
  };
}

function setupChargers() {
  const form = $("emu-charger-form");
  form.elements.charger.addEventListener("change", () => fillCharger());
  for (const input of form.querySelectorAll('input[name="car"]')) {
    input.addEventListener("change", () => showCarDetails(form));
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    const message = form.querySelector(".form-message");
    setMessage(message, "");
    const unplug = checkedValue(form, "car") === NO_CAR;
    const body = unplug || reportLimits(form) ? chargerBody(form) : null;
    if (!body) {
      form.reportValidity();
      setMessage(message, t("fix_fields"), "error");
      return;
    }
    await whileBusy(form.querySelector("button[type=submit]"), async () => {
      try {
        await api.setEmulatedCharger(form.elements.charger.value, body);
        showChargers(await api.emulatedChargers());
        setMessage(message, t("emu_applied"), "ok");
      } catch (err) {
        showApiError(form, message, err);
      }
    });
  });
}

/** Whether this unit is emulated: it answers GET /emulator (others say 404). */
export async function detectEmulator() {
  try {
    fillAll(await api.emulator());
  } catch {
    return false;
  }
  await loadChargers();
  return true;
}

/** Read the controls again (another client or the command line may have changed them). */
export async function loadEmulator() {
  try {
    // A reply that comes while the user types must not undo what was typed.
    fillAll(await api.emulator(), { keepEdited: true });
  } catch {
    // 401 is handled centrally; a failure leaves the last values shown.
  }
  await loadChargers({ keepEdited: true });
}

/** Put the served limits and the fault names in place once they are known. */
export function limitsArrived() {
  buildFaults();
  applyLimits($("panel-emulator"));
  if (lastState) fillAll(lastState);
}

export function rerenderEmulator() {
  translateTree($("panel-emulator"));
  fillCharger();
}

export function setupEmulator() {
  buildFaults();
  setupChargers();
  for (const control of CONTROLS) {
    const form = $(control.form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearFieldErrors(form);
      const message = form.querySelector(".form-message");
      setMessage(message, "");
      const body = reportLimits(form) ? control.body(form) : null;
      if (!body) {
        form.reportValidity();
        setMessage(message, t("fix_fields"), "error");
        return;
      }
      await whileBusy(form.querySelector("button[type=submit]"), async () => {
        try {
          // The reply is what the emulator does now: every card shows it.
          fillAll(await api.setEmulator(body));
          setMessage(message, t("emu_applied"), "ok");
        } catch (err) {
          showApiError(form, message, err);
        }
      });
    });
  }
}
