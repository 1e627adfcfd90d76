// Shared form behaviour: messages, errors at their field, busy buttons, confirmations.

import { has, limitParams, t } from "./i18n.js";
import { outsideLimits } from "./limits.js";

/** Show ``text`` in a form's message line; kind is "ok", "error" or "" (neutral). */
export function setMessage(element, text, kind = "") {
  element.textContent = text;
  element.dataset.kind = kind;
}

export function clearFieldErrors(form) {
  for (const field of form.querySelectorAll("[data-field]")) {
    field.classList.remove("invalid");
    const error = field.querySelector(".field-error");
    if (error) error.textContent = "";
    for (const input of field.querySelectorAll("input, select")) input.removeAttribute("aria-invalid");
  }
}

/** The form's field for a dotted API path: the longest data-field that prefixes it. */
function fieldFor(form, path) {
  let best = null;
  for (const field of form.querySelectorAll("[data-field]")) {
    const name = field.dataset.field;
    if ((path === name || path.startsWith(`${name}.`)) && (!best || name.length > best.dataset.field.length)) {
      best = field;
    }
  }
  return best;
}

/** Put a rule's words at its field, in the user's language; returns false if no such field. */
export function showFieldError(form, path, apiMessage) {
  const field = fieldFor(form, path);
  if (!field) return false;
  // A field may name its words and its limits apart from its API path (load.L1 and
  // load.L2 share "emulator.load").
  const key = `field.${field.dataset.i18nField || field.dataset.field}`;
  field.classList.add("invalid");
  const limits = field.dataset.limits || field.dataset.field;
  const words = has(key) ? t(key, limitParams(limits)) : apiMessage;
  field.querySelector(".field-error").textContent = words;
  for (const input of field.querySelectorAll("input, select")) input.setAttribute("aria-invalid", "true");
  const details = field.closest("details");
  if (details) details.open = true;
  const first = field.querySelector("input, select");
  if (first) first.focus();
  return true;
}

/** Mark every [data-limit] input of ``form`` whose value the browser finds outside the
 *  served limits at its field, before anything is sent; true when all are within. */
export function reportLimits(form) {
  const outside = [...form.querySelectorAll("input[data-limit]")].filter(outsideLimits);
  for (const input of outside.reverse()) {
    const field = input.closest("[data-field]");
    showFieldError(form, field ? field.dataset.field : input.dataset.limit, "");
  }
  return outside.length === 0;
}

/** Report an API error on a form: at its field for 422, else in the message line. */
export function showApiError(form, messageElement, err) {
  if (err.status === 401) return;
  if (err.status === 422 && err.field && showFieldError(form, err.field, err.message)) {
    setMessage(messageElement, t("fix_fields"), "error");
    return;
  }
  setMessage(messageElement, t("request_failed", { message: err.message }), "error");
}

/** Run ``action`` with the form's submit button disabled, so a double tap sends once. */
export async function whileBusy(button, action) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/** Ask in a modal dialog; resolves true only when the user confirms. */
export function confirmAction({ title, text, ok }) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = ok;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    // The safe choice has the focus, so Enter never confirms something destructive.
    document.getElementById("confirm-cancel").focus();
  });
}
