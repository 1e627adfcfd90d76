// Each setting's limits as the unit serves them (GET /api/v1/limits), never copied here.
// An input names its setting with data-limit="<dotted name>" ("pin" for a PIN) and gets
// the served bounds as HTML constraints. Without the limits the forms still work: the
// unit checks every value and its 422 errors show at the field.

import { api } from "./api.js";

// The server anchors its patterns as ^(?:…)$; HTML anchors a pattern attribute itself.
const ANCHORED = /^\^\(\?:([\s\S]*)\)\$$/;
// A pattern that is one character class repeated a fixed number of times, e.g. the PIN's.
const REPEATED_CLASS = /^\^\(\?:\[(?:[^\]\\]|\\.)*\]\{(\d+)(?:,(\d*))?\}\)\$$/;
// The flag browsers compile a pattern attribute with: "v" where supported, else "u".
const PATTERN_FLAGS = (() => {
  try {
    new RegExp("", "v");
    return "v";
  } catch {
    return "u";
  }
})();
// The constraint failures that come from the served limits (not "required", not "step").
const LIMIT_FAILURES = ["rangeUnderflow", "rangeOverflow", "tooShort", "tooLong", "patternMismatch"];

let served = null;
let loading = null;

/** Fetch the limits once; resolves to them, or to null when they cannot be had. */
export function loadLimits() {
  loading ??= api.limits().then(
    (reply) => {
      served = reply;
      return served;
    },
    () => null,
  );
  return loading;
}

const EMULATOR = "emulator.";

/** The served schema of a dotted setting name, "pin", or "emulator.<control>" (an emulated
 *  unit's controls); for a map such as the load per phase, its values' schema. Null if
 *  unknown or not loaded. */
export function limitOf(name) {
  if (!served || !name) return null;
  let schema;
  if (name === "pin") schema = served.pin;
  else if (name.startsWith(EMULATOR)) schema = served.emulator?.[name.slice(EMULATOR.length)];
  else schema = served.settings?.[name];
  // A map with a closed set of keys (the phases) lists each; their schemas are alike.
  if (schema && schema.properties && schema.additionalProperties === false) {
    schema = Object.values(schema.properties)[0];
  } else if (schema && typeof schema.additionalProperties === "object") {
    schema = schema.additionalProperties;
  }
  return schema && typeof schema === "object" ? schema : null;
}

/** minLength and maxLength as served; for a pattern such as [A-Za-z0-9]{8}, from it. */
export function lengthsOf(schema) {
  let { minLength, maxLength } = schema;
  if (minLength === undefined && maxLength === undefined && typeof schema.pattern === "string") {
    const match = REPEATED_CLASS.exec(schema.pattern);
    if (match) {
      minLength = Number(match[1]);
      if (match[2] === undefined) maxLength = minLength;
      else if (match[2] !== "") maxLength = Number(match[2]);
    }
  }
  return { minLength, maxLength };
}

/** The served pattern as an HTML pattern attribute, or null if it cannot be one. */
function htmlPattern(pattern) {
  const match = typeof pattern === "string" ? ANCHORED.exec(pattern) : null;
  if (!match) return null;
  try {
    new RegExp(`^(?:${match[1]})$`, PATTERN_FLAGS);
  } catch {
    return null;
  }
  return match[1];
}

/** Put the served limits on every [data-limit] input under ``root``. */
export function applyLimits(root = document) {
  for (const input of root.querySelectorAll("input[data-limit]")) {
    const schema = limitOf(input.dataset.limit);
    if (!schema) continue;
    if (input.type === "number") {
      if (typeof schema.minimum === "number") input.setAttribute("min", String(schema.minimum));
      if (typeof schema.maximum === "number") input.setAttribute("max", String(schema.maximum));
      continue;
    }
    const { minLength, maxLength } = lengthsOf(schema);
    if (Number.isInteger(maxLength)) input.setAttribute("maxlength", String(maxLength));
    if (Number.isInteger(minLength)) input.setAttribute("minlength", String(minLength));
    const pattern = htmlPattern(schema.pattern);
    if (pattern !== null) input.setAttribute("pattern", pattern);
  }
}

/** Whether the browser finds ``input``'s value outside its served limits. */
export function outsideLimits(input) {
  return LIMIT_FAILURES.some((failure) => input.validity[failure]);
}
