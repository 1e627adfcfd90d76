// The Installation tab's load-balancing card: the `balancing` settings section (on/off,
// delays, the stale limit, phase switching, the site cap and its window). The chargers
// themselves are on the Chargers tab (js/chargers.js).

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
// Each number box: its input id and its setting in the section.
const NUMBERS = {
  "balancing-raise-delay": "raise_delay",
  "balancing-resume-delay": "resume_delay",
  "balancing-stale-limit": "stale_limit",
  "balancing-phase-switch-margin": "phase_switch_margin",
  "balancing-phase-switch-delay": "phase_switch_delay",
  "balancing-site-cap": "site_cap",
};

function setWindow(minutes) {
  for (const input of document.querySelectorAll('#balancing-form input[name="cap_window"]')) {
    input.checked = input.value === String(minutes);
  }
}

export function fillBalancing(settings) {
  const section = settings.balancing;
  if (!section) return;
  $("balancing-enabled").checked = section.enabled;
  for (const [id, name] of Object.entries(NUMBERS)) $(id).value = String(section[name]);
  setWindow(section.cap_window);
}

/** The section as typed (chargers left out: a PATCH keeps them); null if a box is empty. */
function collect(form) {
  const section = { enabled: $("balancing-enabled").checked };
  let usable = true;
  for (const [id, name] of Object.entries(NUMBERS)) {
    const raw = $(id).value.trim();
    const value = Number(raw);
    if (raw === "" || !Number.isFinite(value)) {
      showFieldError(form, `balancing.${name}`, "");
      usable = false;
    }
    section[name] = value;
  }
  const chosen = form.querySelector('input[name="cap_window"]:checked');
  if (chosen) section.cap_window = Number(chosen.value);
  return usable ? section : null;
}

export function setupBalancingForm() {
  const form = $("balancing-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    const message = $("balancing-message");
    setMessage(message, "");
    const balancing = reportLimits(form) ? collect(form) : null;
    if (!balancing) {
      setMessage(message, t("fix_fields"), "error");
      return;
    }
    await whileBusy(form.querySelector("button[type=submit]"), async () => {
      try {
        fillBalancing(await api.patchSettings({ balancing }));
        setMessage(message, t("saved"), "ok");
      } catch (err) {
        showApiError(form, message, err);
      }
    });
  });
}
