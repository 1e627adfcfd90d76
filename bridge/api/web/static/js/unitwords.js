// The load balancing's own words (a charger's reason, an event's message) in the user's
// language. The unit words them in English (bridge/balancing/controller.py and
// service.py); here each known phrase is put into Dutch, and a phrase this page does not
// know stays as the unit said it, so nothing is ever hidden.

import { language } from "./i18n.js";

// Numbers with a decimal point followed by a unit or an arrow: Dutch writes a comma.
const DECIMAL = /(\d)\.(\d+)(?=\s?(?:A|kW|kWh|W|s|%|×|→))/g;

// Ordered: longer phrases first, so a short one never eats part of a longer one.
const DUTCH = [
  [/ resumed by a user: balancing decides its limit again/g, " hervat door een gebruiker: de balancering bepaalt zijn limiet weer"],
  [/: the override (until [^;]*?)?\s*ended; balancing decides its limit again/g, (m, until) =>
    `: het vastzetten${until ? ` ${until}` : ""} is voorbij; de balancering bepaalt zijn limiet weer`],
  [/: override ([\d.]+) A (until [^,]*), set by a user/g, ": vastgezet op $1 A $2 door een gebruiker"],
  [/ draws ([\d.]+) A over its limit ([\d.?]+) A \+ ([\d.]+) A for (\d+) s: non-compliant, its real draw is counted/g,
    " neemt $1 A boven zijn limiet $2 A + $3 A gedurende $4 s: volgt zijn limiet niet, wat hij echt neemt telt mee"],
  [/ follows its limit again/g, " volgt zijn limiet weer"],
  [/ did not take its limit: /g, " nam zijn limiet niet aan: "],
  [/ is managed from now on/g, " wordt voortaan beheerd"],
  [/ is no longer managed/g, " wordt niet meer beheerd"],
  [/site cap ([\d.]+) kW: the window is projected at ([\d.]+) kW, chargers lowered/g,
    "vermogensgrens $1 kW: het venster komt naar verwachting op $2 kW, laadpalen verlaagd"],
  [/cap ([\d.]+) kW over ([\d.]+) min \(projected ([\d.]+) kW\)/g, "grens $1 kW over $2 min (verwacht $3 kW)"],
  [/above the tripping current/g, "boven de afschakelstroom"],
  [/trip budget (\d+)% used \(allowed (\d+)%\)/g, "afschakelbudget $1% gebruikt (toegestaan $2%)"],
  [/\b(L[123]) at ([\d.]+) × In/g, "$1 op $2 × In"],
  [/\b(L[123]) room ([\d.]+) A/g, "ruimte op $1 $2 A"],
  [/, below ([\d.]+) A/g, ", onder $1 A"],
  [/its car takes nothing: its minimum/g, "de auto neemt niets: zijn minimum"],
  [/its max ([\d.]+) A/g, "zijn maximum $1 A"],
  [/margin ([\d.]+) W held ([\d.]+) s/g, "marge $1 W gedurende $2 s"],
  [/meter stale: reading (\d+) s old \(stale after ([\d.]+) s\)/g, "meting verouderd: $1 s oud (verouderd na $2 s)"],
  [/meter unavailable: no reading yet/g, "meter niet beschikbaar: nog geen meting"],
  [/meter unavailable: /g, "meter niet beschikbaar: "],
  [/no headroom on (L[123])/g, "geen ruimte op $1"],
  [/waiting for the first reading/g, "wacht op de eerste meting"],
  [/fresh readings: the normal loop resumes/g, "verse metingen: de normale regeling gaat verder"],
  [/balancing is switched off/g, "de balancering is uitgeschakeld"],
  [/balancing switched off/g, "balancering uitgeschakeld"],
  [/balancing switched on/g, "balancering ingeschakeld"],
  [/balancing off/g, "balancering uit"],
  [/ paused by a user/g, " gepauzeerd door een gebruiker"],
  [/^paused by a user/g, "gepauzeerd door een gebruiker"],
  [/^override (until .+?)(?=: )/g, "vastgezet $1"],
  [/^override(?=: )/g, "vastgezet"],
  [/^non-compliant:/g, "volgt limiet niet:"],
  [/^no car:/g, "geen auto:"],
  [/^charger fault:/g, "storing laadpaal:"],
  [/not decided yet/g, "nog niet beslist"],
  [/ on (\d) phases\b/g, " op $1 fasen"],
  [/ on 1 phase\b/g, " op 1 fase"],
  [/ \(paused\)$/g, " (gepauzeerd)"],
  [/ \(resumed\)$/g, " (hervat)"],
  [/ \(started\)$/g, " (gestart)"],
  [/ \(fail-safe\)$/g, " (noodstroom)"],
  [/ \(its max\)$/g, " (zijn maximum)"],
  [/\buntil (\d)/g, "tot $1"],
];

/** ``text`` (the unit's English words) in the user's language, as far as it is known. */
export function unitWords(text) {
  if (!text || language() !== "nl") return text || "";
  let words = String(text);
  for (const [pattern, replacement] of DUTCH) words = words.replace(pattern, replacement);
  return words.replace(DECIMAL, "$1,$2");
}
