// The Installation tab: fuse and its kind, grid, phases, voltage wiring (with the
// installation manual's advice) and the troubleshooting-only supply voltage and current
// scheme. The load-balancing card below it is js/balancing.js.

import { api } from "./api.js";
import {
  clearFieldErrors,
  reportLimits,
  setMessage,
  showApiError,
  showFieldError,
  whileBusy,
} from "./forms.js";
import { t, translateTree } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const PHASES = ["L1", "L2", "L3"];

function buildScheme() {
  const container = $("current-scheme");
  container.replaceChildren();
  for (let i = 0; i < 3; i += 1) {
    const n = i + 1;
    const row = document.createElement("div");
    row.className = "scheme-row";
    row.dataset.field = `installation.current_scheme.${i}`;

    const name = document.createElement("span");
    name.className = "scheme-name";
    name.dataset.i18nN = String(n);

    const label = document.createElement("label");
    label.className = "visually-hidden";
    label.htmlFor = `ct-${n}-phase`;
    const select = document.createElement("select");
    select.id = `ct-${n}-phase`;
    select.name = `ct_${n}_phase`;
    for (const phase of PHASES) select.append(new Option(phase, phase));

    const check = document.createElement("label");
    check.className = "choice";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = `ct-${n}-reversed`;
    box.name = `ct_${n}_reversed`;
    const words = document.createElement("span");
    words.dataset.i18n = "ct_reversed";
    check.append(box, " ", words);

    const error = document.createElement("p");
    error.className = "field-error";
    row.append(name, label, select, check, error);
    container.append(row);
  }
  renderSchemeLabels();
}

function renderSchemeLabels() {
  for (const name of document.querySelectorAll("#current-scheme [data-i18n-n]")) {
    name.textContent = t("ct_input", { n: name.dataset.i18nN });
  }
  for (let n = 1; n <= 3; n += 1) {
    document.querySelector(`label[for="ct-${n}-phase"]`).textContent = t("ct_phase", { n });
  }
  translateTree($("current-scheme"));
}

function checked(name) {
  const input = document.querySelector(`#installation-form input[name="${name}"]:checked`);
  return input ? input.value : null;
}

function setChecked(name, value) {
  for (const input of document.querySelectorAll(`#installation-form input[name="${name}"]`)) {
    input.checked = input.value === String(value);
  }
}

/** The Amp Guard's installation manual: all phases with generation; otherwise one phase, or
 *  L1 + L2 on IT. It is the least to wire: more voltages measure more and are never wrong. */
export function advisedWiring(gridType, phases, generation) {
  if (phases === 1) return "one";
  if (generation) return "all";
  return gridType === "IT" ? "it_l1_l2" : "one";
}

// How many voltages each wiring measures, to tell whether a choice falls short.
const VOLTAGES_WIRED = { one: 1, it_l1_l2: 2, all: 3 };

function renderAdvice() {
  const phases = Number(checked("phases"));
  const advised = advisedWiring(checked("grid_type"), phases, $("generation").checked);
  const parts = [t(`advice_${advised}`)];
  if (phases === 1) parts.push(t("advice_single_phase"));
  const chosen = checked("voltage_wiring");
  // A 1-phase connection wires L1 only, whatever is chosen.
  const short = Boolean(chosen) && phases !== 1 && VOLTAGES_WIRED[chosen] < VOLTAGES_WIRED[advised];
  if (short) parts.push(t("advice_fewer"));
  const advice = $("voltage-wiring-advice");
  advice.textContent = parts.join(" ");
  advice.dataset.advised = advised;
  advice.classList.toggle("advice-warning", short);
}

export function fillInstallation(settings) {
  const inst = settings.installation;
  $("main-fuse").value = String(inst.main_fuse);
  $("safety-margin").value = String(inst.safety_margin);
  setChecked("protective_device", inst.protective_device);
  setChecked("grid_type", inst.grid_type);
  setChecked("phases", inst.phases);
  $("generation").checked = inst.generation;
  setChecked("voltage_wiring", inst.voltage_wiring);
  $("supply-voltage").value = String(inst.supply_voltage);
  inst.current_scheme.forEach((ct, i) => {
    $(`ct-${i + 1}-phase`).value = ct.phase;
    $(`ct-${i + 1}-reversed`).checked = ct.reversed;
  });
  renderAdvice();
}

export function rerenderInstallation() {
  renderSchemeLabels();
  renderAdvice();
}

/** Read a number box; null (and an error at the field) when it holds no number. */
function numberField(form, id, path) {
  const raw = $(id).value.trim();
  const value = Number(raw);
  if (raw === "" || !Number.isFinite(value)) {
    showFieldError(form, path, "");
    return null;
  }
  return value;
}

function collect(form) {
  const mainFuse = numberField(form, "main-fuse", "installation.main_fuse");
  const margin = numberField(form, "safety-margin", "installation.safety_margin");
  const supply = numberField(form, "supply-voltage", "installation.supply_voltage");
  if (mainFuse === null || margin === null || supply === null) return null;
  return {
    main_fuse: mainFuse,
    safety_margin: margin,
    protective_device: checked("protective_device"),
    grid_type: checked("grid_type"),
    phases: Number(checked("phases")),
    generation: $("generation").checked,
    voltage_wiring: checked("voltage_wiring"),
    supply_voltage: supply,
    current_scheme: [1, 2, 3].map((n) => ({
      phase: $(`ct-${n}-phase`).value,
      reversed: $(`ct-${n}-reversed`).checked,
    })),
  };
}

export function setupInstallationForm() {
  buildScheme();
  const form = $("installation-form");
  form.addEventListener("change", renderAdvice);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    const message = $("installation-message");
    setMessage(message, "");
    // Out of the served limits: said at the field at once, nothing sent.
    const installation = reportLimits(form) ? collect(form) : null;
    if (!installation) {
      setMessage(message, t("fix_fields"), "error");
      return;
    }
    await whileBusy(form.querySelector("button[type=submit]"), async () => {
      try {
        const settings = await api.patchSettings({ installation });
        fillInstallation(settings);
        setMessage(message, t("saved"), "ok");
      } catch (err) {
        showApiError(form, message, err);
      }
    });
  });
}
