// English and Dutch texts of the admin UI, and the language choice.
// Elements carry data-i18n="key" (text) or data-i18n-aria-label="key" (aria-label), and
// data-i18n-limit="<setting>" when the text names that setting's served limits.
// A text's [bracketed part] shows only when every {placeholder} in it has a value: bounds
// come from the unit (js/limits.js) and are left out of the words until they are known.

import { lengthsOf, limitOf } from "./limits.js";

const TEXTS = {
  en: {
    skip_to_content: "Skip to content",
    language: "Language",
    logout: "Log out",
    sections: "Sections",
    login_title: "Log in",
    login_intro: "Enter the[ {length}-character] PIN from the unit's label.",
    pin: "PIN",
    login: "Log in",
    login_wrong_pin: "Wrong PIN. Check the unit's label and try again.",
    login_one_try_left: "1 try left before a lock-out.",
    login_tries_left: "{count} tries left before a lock-out.",
    login_locked_out: "Too many wrong PINs. Wait {seconds} s before trying again.",
    login_failed: "Could not log in: {message}",
    session_expired: "Your session has expired. Log in again.",
    logged_out: "You are logged out.",
    unreachable: "The unit cannot be reached. Is it on and on this network?",
    tab_status: "Status",
    tab_wifi: "Wi-Fi",
    tab_installation: "Installation",
    tab_system: "System",
    lights_title: "Indicators",
    light_logo: "Logo",
    light_communication: "Communication",
    light_voltage: "Voltage measurement",
    light_current: "Current measurement",
    logo_on: "On: the unit has power",
    logo_off: "Off",
    comm_cloud: "Green: connected to the cloud",
    comm_network: "Blue: network only, no cloud",
    comm_network_through: "Blue: on the network through {interfaces}, no cloud",
    network_through: "Connected through {interfaces}",
    network_none: "No network connection",
    comm_none: "Off: no network",
    voltage_ok: "Green: OK",
    voltage_wrong_phase_sequence: "Red: wrong phase sequence",
    voltage_not_connected: "Off: not connected",
    colour_green: "Green",
    colour_blue: "Blue",
    colour_red: "Red",
    colour_off: "Off",
    current_ok: "Green: OK",
    current_wrong_phase_sequence: "Red: a CT is on another phase",
    current_reversed: "Red: a CT is reversed",
    current_not_connected: "Off: not connected",
    current_indeterminate: "Green: the direction cannot be found",
    light_no_reading: "Off: no reading from the meter",
    phase_current_wrong_phase_sequence: "CT on {phase} sits on another phase",
    phase_current_reversed: "CT on {phase} is reversed",
    phase_current_not_connected: "no current on {phase}",
    phase_voltage_not_connected: "no voltage on {phase}",
    phase_voltage_wrong_phase_sequence: "voltage on {phase} is out of sequence",
    voltage_reason_swapped: "two phases are swapped ({phases})",
    voltage_reason_misplaced: "voltage on {phases} is out of sequence",
    current_reason_no_voltage_reference: "no voltage reference for the CT on {phases}",
    current_reason_low_current: "current below 2 A, its direction cannot be found",
    current_reason_no_angle: "the meter gives no angle for the current",
    phases_title: "Live measurements",
    phase: "Phase",
    current: "Current",
    voltage: "Voltage",
    power: "Power",
    headroom: "Headroom",
    total_power: "Total power",
    frequency: "Frequency",
    last_update: "Updated",
    meter_unavailable: "No reading from the meter: {error}",
    settings_unusable: "The saved settings could not be read; check every tab. ({error})",
    storage_failing:
      "The unit cannot save to its storage (full or read-only): changes are refused until it can. ({error})",
    unit_state_title: "Unit",
    phase_sequence: "Phase sequence",
    sequence_ok: "L1 → L2 → L3, correct",
    sequence_wrong: "Wrong phase sequence",
    sequence_swapped: "Reversed: two phases are swapped",
    sequence_unknown: "Not measured",
    sequence_not_applicable: "Not checked: the meter gives no voltage angles",
    voltage_not_applicable: "Off: not checked, the unit reads a meter without angles",
    current_not_applicable: "Off: no CTs of the unit's own to check (the unit reads a meter)",
    phase_voltage_not_applicable: "{phase}: sequence not checked (the meter gives no angles)",
    phase_current_not_applicable: "{phase}: no CT of the unit's own (the unit reads a meter)",
    not_measured: "not measured by this meter",
    meter_title: "Meter",
    meter_intro: "The meter the unit reads its measurements from (chosen at start-up).",
    meter_source: "Meter",
    meter_address: "Connection",
    meter_link: "Link",
    meter_link_up: "Up",
    meter_link_down: "Down",
    meter_last_message: "Last telegram",
    meter_last_message_value: "{time} ({seconds} s ago)",
    meter_interval: "Interval",
    meter_interval_value: "every {seconds} s",
    meter_counts: "Received / errors",
    meter_counts_value: "{received} / {errors}",
    meter_last_error: "Last error",
    meter_no_error: "None",
    meter_pairing:
      "Press the button on the HomeWizard P1 meter now. The unit asks it for a token every few seconds; pressed, the meter hands one out for 30 seconds and the unit keeps it.",
    meter_not_applicable:
      "This meter measures for the unit: the voltage and current lights (phase sequence, CT direction) do not apply and stay off. The CT settings below are for the unit's own inputs only.",
    "source.emulator": "Emulated meter",
    "source.adc": "The unit's own inputs (ADC)",
    "source.modbus-tcp": "Modbus meter (TCP)",
    "source.modbus-rtu": "Modbus meter (RS-485)",
    "source.p1-serial": "Smart meter, P1 cable",
    "source.p1-tcp": "Smart meter, P1 over the network",
    "source.homewizard": "HomeWizard P1 meter",
    "source.shelly": "Shelly Pro 3EM",
    network: "Network",
    cloud: "Cloud",
    cloud_disabled: "Not enabled",
    cloud_connected: "Connected",
    cloud_disconnected: "Not connected",
    cloud_backlog: "{count} readings waiting",
    setup_ap: "Setup access point",
    setup_ap_active: "On: {ssid}, {minutes} min left",
    setup_ap_inactive: "Off",
    serial: "Serial number",
    firmware: "Firmware",
    live_connected: "Live",
    live_connecting: "Connecting…",
    live_polling: "Updating every few seconds",
    wifi_title: "Customer Wi-Fi network",
    wifi_intro:
      "The network the unit joins to reach the cloud. If it does not connect within a minute, the unit goes back to the previous network.",
    wifi_ssid: "Network name (SSID)",
    wifi_passphrase: "Password",
    wifi_passphrase_set: "A password is stored. Leave empty to keep it.",
    wifi_passphrase_unset: "Leave empty for an open network.",
    wifi_result_title: "Connection",
    wifi_state_idle: "No Wi-Fi network configured",
    wifi_state_connecting: "Connecting to {ssid}…",
    wifi_state_connected: "Connected to {ssid}",
    wifi_state_failed: "Could not connect to {ssid}",
    wifi_state_rolled_back: "Could not connect to {failed}; back on {ssid}",
    wifi_state_rolled_back_none: "Could not connect to {failed}; no previous network",
    wifi_state_unknown: "No information",
    wifi_saved: "Sent to the unit. The result appears below.",
    update: "Update",
    installation_title: "Installation",
    main_fuse: "Current limit (main fuse)",
    main_fuse_hint: "The rating of the main fuse[, {minimum} to {maximum} A].",
    safety_margin: "Safety margin",
    safety_margin_hint: "Kept free below the fuse[, {minimum} to {maximum} A].",
    grid_type: "Grid type",
    phases: "Connection",
    one_phase: "1-phase",
    three_phase: "3-phase",
    generation: "Generation present (solar panels, wind)",
    voltage_wiring: "Voltage wiring",
    wiring_all: "All phases",
    wiring_all_when: "Needed with generation (PV, wind); always allowed, and measures the most.",
    wiring_one: "One phase",
    wiring_one_when: "The least without generation, and on a 1-phase connection (L2 and L3 unused).",
    wiring_it: "IT: L1 + L2",
    wiring_it_when: "The least on an IT grid without generation.",
    advice_all: "The installation manual asks for all phases here (generation is present).",
    advice_one: "The installation manual asks for at least one phase (L1) here; wiring all phases is fine and measures more.",
    advice_it_l1_l2:
      "The installation manual asks for at least L1 + L2 here (IT grid); wiring all phases is fine and measures more.",
    advice_single_phase: "On a 1-phase connection only L1 is connected; L2 and L3 stay unused.",
    advice_fewer: "The chosen wiring measures fewer voltages than needed here.",
    troubleshooting: "Troubleshooting only",
    troubleshooting_intro: "Change these only when troubleshooting a faulty installation.",
    supply_voltage: "Supply voltage",
    supply_voltage_hint: "Used when a phase's voltage is not measured[, {minimum} to {maximum} V].",
    current_scheme: "Current scheme",
    current_scheme_hint: "Which phase each CT input sits on, and whether its arrow points against the flow.",
    ct_input: "CT input {n}",
    ct_phase: "Phase of CT input {n}",
    ct_reversed: "Reversed",
    save: "Save",
    saved: "Saved.",
    fix_fields: "Check the marked fields.",
    request_failed: "That did not work: {message}",
    identity_title: "Unit",
    name: "Name",
    model: "Model",
    api_version: "API version",
    actions_title: "Restart and reset",
    reboot_intro: "Restarting keeps all settings.",
    reboot: "Reboot",
    reboot_confirm_title: "Reboot the unit?",
    reboot_confirm_text: "The unit restarts and is back in about a minute. Settings are kept.",
    rebooting: "The unit is restarting. When it is back, in about a minute, log in again.",
    reset_intro: "A factory reset erases the settings and paired clients.",
    factory_reset: "Factory reset",
    reset_confirm_title: "Factory reset?",
    reset_confirm_text:
      "All settings (installation, Wi-Fi, cloud) and paired clients are erased. This cannot be undone.",
    reset_done: "The unit was reset to factory settings.",
    reset_login: "The unit was reset to factory settings. Log in with the PIN from the label.",
    cancel: "Cancel",
    confirm: "Confirm",
    pin_title: "Change PIN",
    new_pin: "New PIN",
    new_pin_hint: "Letters and digits[, {length} characters].",
    confirm_pin: "Repeat the new PIN",
    change_pin: "Change PIN",
    pin_changed: "The PIN was changed. Use the new PIN from now on.",
    pin_mismatch: "The two PINs differ.",
    clients_title: "Paired clients",
    clients_intro: "Apps such as Home Assistant that were paired with the PIN.",
    clients_empty: "No paired clients.",
    client_meta: "Paired {created} · last seen {last_seen}",
    never: "never",
    revoke: "Revoke",
    revoke_label: "Revoke {name}",
    revoke_confirm_title: "Revoke {name}?",
    revoke_confirm_text: "This client can no longer read the unit until it is paired again.",
    revoked: "{name} was revoked.",
    tab_emulator: "Emulator",
    emulator_intro:
      "This unit is emulated: set what its meter measures, and try the faults an installer can make. The Status tab and Home Assistant show what the unit sees.",
    emu_fault_title: "Wiring fault",
    emu_fault: "Fault",
    fault_none: "None",
    fault_none_hint: "Wired as the installation manual says.",
    fault_swapped_phases: "Two phases swapped",
    fault_swapped_phases_hint: "The voltage sequence is reversed.",
    fault_reversed_ct: "CT reversed",
    fault_reversed_ct_hint: "The clamp's arrow points against the flow.",
    fault_wrong_phase_ct: "CT on the wrong phase",
    fault_wrong_phase_ct_hint: "The clamp sits on the next phase's conductor.",
    fault_voltage_not_connected: "Voltage not connected",
    fault_voltage_not_connected_hint: "The phase's voltage input reads nothing.",
    fault_meter_offline: "Meter offline",
    fault_meter_offline_hint: "The meter does not answer at all.",
    emu_fault_phase: "On phase",
    emu_fault_phase_hint:
      "Swapped phases swap this phase with the next; a CT on the wrong phase sits on the next one's conductor.",
    emu_load_title: "Loads",
    emu_load_hint: "Per phase, in A; a negative load feeds in[ ({minimum} to {maximum} A)].",
    emu_load_l1: "Load on L1",
    emu_load_l2: "Load on L2",
    emu_load_l3: "Load on L3",
    emu_ev_title: "Electric vehicle",
    emu_ev_current: "Charging current per phase",
    emu_ev_hint: "0 stops charging; otherwise 6 A[ to {maximum} A].",
    emu_ev_phases: "Charging on",
    emu_ev_one: "1 phase (L1)",
    emu_ev_three: "3 phases",
    emu_pv_title: "Solar panels",
    emu_pv: "PV power",
    emu_pv_hint: "Spread over the phases; what the loads do not use is exported[ (up to {maximum} W)].",
    apply: "Apply",
    emu_chargers_title: "Chargers",
    emu_charger: "Charger",
    emu_charger_managed: "managed",
    emu_charger_pending: "asks to be managed",
    emu_charger_state: "{name} ({managed}): offers {offered} A, the car draws {draw} A.",
    emu_charger_no_car: "{name} ({managed}): no car.",
    emu_car: "Car plugged in",
    emu_car_none: "None",
    emu_car_one: "1 phase",
    emu_car_three: "3 phases",
    emu_car_max: "Most the car draws per phase",
    emu_car_max_hint: "What its onboard charger takes; the unit's limit may give it less[ ({minimum} to {maximum} A)].",
    emu_car_ignores: "The car ignores its limits",
    emu_applied: "Applied. The Status tab shows what the unit sees.",
    "field.emulator.load": "Enter a current[ from {minimum} to {maximum} A].",
    "field.emulator.ev.current": "Enter 0 to stop, or a current from 6 A[ to {maximum} A].",
    "field.emulator.pv": "Enter a power[ from {minimum} to {maximum} W].",
    "field.emulator.charger.car.max_current": "Enter a current[ from {minimum} to {maximum} A].",
    "field.installation.main_fuse": "Enter a whole number[ from {minimum} to {maximum} A].",
    "field.installation.safety_margin": "Enter a margin[ from {minimum} to {maximum} A].",
    "field.installation.grid_type": "Choose TN, TT or IT.",
    "field.installation.phases": "Choose 1-phase or 3-phase.",
    "field.installation.voltage_wiring": "This voltage wiring does not fit the grid type.",
    "field.installation.supply_voltage": "Enter a whole number[ from {minimum} to {maximum} V].",
    "field.installation.current_scheme": "Each CT input needs its own phase.",
    "field.wifi.ssid": "Enter a network name[ of up to {maxBytes} bytes].",
    "field.wifi.passphrase": "Not a Wi-Fi password: too short, too long or with characters Wi-Fi does not allow.",
    "field.pin": "The PIN is made of[ {length} characters:] letters and digits.",
  },
  nl: {
    skip_to_content: "Naar de inhoud",
    language: "Taal",
    logout: "Afmelden",
    sections: "Onderdelen",
    login_title: "Aanmelden",
    login_intro: "Voer de pincode[ van {length} tekens] van het label van het apparaat in.",
    pin: "Pincode",
    login: "Aanmelden",
    login_wrong_pin: "Verkeerde pincode. Controleer het label en probeer het opnieuw.",
    login_one_try_left: "Nog 1 poging voor een blokkering.",
    login_tries_left: "Nog {count} pogingen voor een blokkering.",
    login_locked_out: "Te vaak een verkeerde pincode. Wacht {seconds} s en probeer het dan opnieuw.",
    login_failed: "Aanmelden lukte niet: {message}",
    session_expired: "Uw sessie is verlopen. Meld u opnieuw aan.",
    logged_out: "U bent afgemeld.",
    unreachable: "Het apparaat is niet bereikbaar. Staat het aan en zit het op dit netwerk?",
    tab_status: "Status",
    tab_wifi: "Wifi",
    tab_installation: "Installatie",
    tab_system: "Systeem",
    lights_title: "Indicatoren",
    light_logo: "Logo",
    light_communication: "Communicatie",
    light_voltage: "Spanningsmeting",
    light_current: "Stroommeting",
    logo_on: "Aan: het apparaat heeft voeding",
    logo_off: "Uit",
    comm_cloud: "Groen: verbonden met de cloud",
    comm_network: "Blauw: alleen netwerk, geen cloud",
    comm_network_through: "Blauw: op het netwerk via {interfaces}, geen cloud",
    network_through: "Verbonden via {interfaces}",
    network_none: "Geen netwerkverbinding",
    comm_none: "Uit: geen netwerk",
    voltage_ok: "Groen: in orde",
    voltage_wrong_phase_sequence: "Rood: verkeerde fasevolgorde",
    voltage_not_connected: "Uit: niet aangesloten",
    colour_green: "Groen",
    colour_blue: "Blauw",
    colour_red: "Rood",
    colour_off: "Uit",
    current_ok: "Groen: in orde",
    current_wrong_phase_sequence: "Rood: een stroomtang zit op een andere fase",
    current_reversed: "Rood: een stroomtang zit andersom",
    current_not_connected: "Uit: niet aangesloten",
    current_indeterminate: "Groen: de richting is niet te bepalen",
    light_no_reading: "Uit: geen meting van de meter",
    phase_current_wrong_phase_sequence: "stroomtang op {phase} zit op een andere fase",
    phase_current_reversed: "stroomtang op {phase} zit andersom",
    phase_current_not_connected: "geen stroom op {phase}",
    phase_voltage_not_connected: "geen spanning op {phase}",
    phase_voltage_wrong_phase_sequence: "spanning op {phase} staat in de verkeerde volgorde",
    voltage_reason_swapped: "twee fasen zijn verwisseld ({phases})",
    voltage_reason_misplaced: "spanning op {phases} staat in de verkeerde volgorde",
    current_reason_no_voltage_reference: "geen spanningsreferentie voor de stroomtang op {phases}",
    current_reason_low_current: "stroom onder 2 A, de richting is niet te bepalen",
    current_reason_no_angle: "de meter geeft geen hoek voor de stroom",
    phases_title: "Actuele metingen",
    phase: "Fase",
    current: "Stroom",
    voltage: "Spanning",
    power: "Vermogen",
    headroom: "Ruimte",
    total_power: "Totaal vermogen",
    frequency: "Frequentie",
    last_update: "Bijgewerkt",
    meter_unavailable: "Geen meting van de meter: {error}",
    settings_unusable: "De opgeslagen instellingen waren onleesbaar; controleer elk tabblad. ({error})",
    storage_failing:
      "Het apparaat kan niet opslaan (geheugen vol of alleen-lezen): wijzigingen worden geweigerd tot dat weer kan. ({error})",
    unit_state_title: "Apparaat",
    phase_sequence: "Fasevolgorde",
    sequence_ok: "L1 → L2 → L3, juist",
    sequence_wrong: "Verkeerde fasevolgorde",
    sequence_swapped: "Omgekeerd: twee fasen zijn verwisseld",
    sequence_unknown: "Niet gemeten",
    sequence_not_applicable: "Niet gecontroleerd: de meter geeft geen spanningshoeken",
    voltage_not_applicable: "Uit: niet gecontroleerd, het apparaat leest een meter zonder hoeken",
    current_not_applicable: "Uit: geen eigen stroomtangen te controleren (het apparaat leest een meter)",
    phase_voltage_not_applicable: "{phase}: volgorde niet gecontroleerd (de meter geeft geen hoeken)",
    phase_current_not_applicable: "{phase}: geen eigen stroomtang (het apparaat leest een meter)",
    not_measured: "niet gemeten door deze meter",
    meter_title: "Meter",
    meter_intro: "De meter waarvan het apparaat zijn metingen leest (bij het opstarten gekozen).",
    meter_source: "Meter",
    meter_address: "Verbinding",
    meter_link: "Koppeling",
    meter_link_up: "Actief",
    meter_link_down: "Verbroken",
    meter_last_message: "Laatste telegram",
    meter_last_message_value: "{time} ({seconds} s geleden)",
    meter_interval: "Interval",
    meter_interval_value: "elke {seconds} s",
    meter_counts: "Ontvangen / fouten",
    meter_counts_value: "{received} / {errors}",
    meter_last_error: "Laatste fout",
    meter_no_error: "Geen",
    meter_pairing:
      "Druk nu op de knop van de HomeWizard P1-meter. Het apparaat vraagt de meter om de paar seconden om een token; na een druk geeft de meter er 30 seconden lang een uit en het apparaat bewaart het.",
    meter_not_applicable:
      "Deze meter meet voor het apparaat: de spannings- en stroomlampjes (fasevolgorde, richting van de stroomtangen) gelden niet en blijven uit. De instellingen van de stroomtangen hieronder gelden alleen voor de eigen ingangen.",
    "source.emulator": "Nagebootste meter",
    "source.adc": "De eigen ingangen van het apparaat (ADC)",
    "source.modbus-tcp": "Modbus-meter (TCP)",
    "source.modbus-rtu": "Modbus-meter (RS-485)",
    "source.p1-serial": "Slimme meter, P1-kabel",
    "source.p1-tcp": "Slimme meter, P1 via het netwerk",
    "source.homewizard": "HomeWizard P1-meter",
    "source.shelly": "Shelly Pro 3EM",
    network: "Netwerk",
    cloud: "Cloud",
    cloud_disabled: "Niet ingeschakeld",
    cloud_connected: "Verbonden",
    cloud_disconnected: "Niet verbonden",
    cloud_backlog: "{count} metingen in de wachtrij",
    setup_ap: "Installatie-toegangspunt",
    setup_ap_active: "Aan: {ssid}, nog {minutes} min",
    setup_ap_inactive: "Uit",
    serial: "Serienummer",
    firmware: "Firmware",
    live_connected: "Live",
    live_connecting: "Verbinden…",
    live_polling: "Elke paar seconden bijgewerkt",
    wifi_title: "Wifi-netwerk van de klant",
    wifi_intro:
      "Het netwerk waarmee het apparaat de cloud bereikt. Lukt de verbinding niet binnen een minuut, dan gaat het apparaat terug naar het vorige netwerk.",
    wifi_ssid: "Netwerknaam (SSID)",
    wifi_passphrase: "Wachtwoord",
    wifi_passphrase_set: "Er is een wachtwoord opgeslagen. Laat leeg om het te houden.",
    wifi_passphrase_unset: "Laat leeg voor een open netwerk.",
    wifi_result_title: "Verbinding",
    wifi_state_idle: "Geen wifi-netwerk ingesteld",
    wifi_state_connecting: "Verbinden met {ssid}…",
    wifi_state_connected: "Verbonden met {ssid}",
    wifi_state_failed: "Verbinden met {ssid} lukte niet",
    wifi_state_rolled_back: "Verbinden met {failed} lukte niet; terug op {ssid}",
    wifi_state_rolled_back_none: "Verbinden met {failed} lukte niet; geen vorig netwerk",
    wifi_state_unknown: "Geen informatie",
    wifi_saved: "Naar het apparaat gestuurd. Het resultaat verschijnt hieronder.",
    update: "Bijwerken",
    installation_title: "Installatie",
    main_fuse: "Stroomgrens (hoofdzekering)",
    main_fuse_hint: "De waarde van de hoofdzekering[, {minimum} tot {maximum} A].",
    safety_margin: "Veiligheidsmarge",
    safety_margin_hint: "Blijft vrij onder de zekering[, {minimum} tot {maximum} A].",
    grid_type: "Netsysteem",
    phases: "Aansluiting",
    one_phase: "1-fase",
    three_phase: "3-fase",
    generation: "Opwekking aanwezig (zonnepanelen, wind)",
    voltage_wiring: "Spanningsaansluiting",
    wiring_all: "Alle fasen",
    wiring_all_when: "Nodig bij opwekking (zon, wind); altijd toegestaan, en meet het meest.",
    wiring_one: "Eén fase",
    wiring_one_when: "Het minste zonder opwekking, en bij een 1-fase-aansluiting (L2 en L3 vrij).",
    wiring_it: "IT: L1 + L2",
    wiring_it_when: "Het minste bij een IT-net zonder opwekking.",
    advice_all: "De installatiehandleiding vraagt hier alle fasen (er is opwekking).",
    advice_one: "De installatiehandleiding vraagt hier minstens één fase (L1); alle fasen aansluiten mag en meet meer.",
    advice_it_l1_l2:
      "De installatiehandleiding vraagt hier minstens L1 + L2 (IT-net); alle fasen aansluiten mag en meet meer.",
    advice_single_phase: "Bij een 1-fase-aansluiting alleen L1 aansluiten; L2 en L3 blijven vrij.",
    advice_fewer: "De gekozen aansluiting meet minder spanningen dan hier nodig is.",
    troubleshooting: "Alleen voor storingzoeken",
    troubleshooting_intro: "Wijzig deze alleen bij het zoeken naar een storing in de installatie.",
    supply_voltage: "Netspanning",
    supply_voltage_hint: "Gebruikt als de spanning van een fase niet gemeten wordt[, {minimum} tot {maximum} V].",
    current_scheme: "Stroomschema",
    current_scheme_hint: "Op welke fase elke stroomtang zit, en of de pijl tegen de stroom in wijst.",
    ct_input: "Stroomtang-ingang {n}",
    ct_phase: "Fase van stroomtang-ingang {n}",
    ct_reversed: "Andersom",
    save: "Opslaan",
    saved: "Opgeslagen.",
    fix_fields: "Controleer de gemarkeerde velden.",
    request_failed: "Dat lukte niet: {message}",
    identity_title: "Apparaat",
    name: "Naam",
    model: "Model",
    api_version: "API-versie",
    actions_title: "Herstarten en resetten",
    reboot_intro: "Herstarten bewaart alle instellingen.",
    reboot: "Herstarten",
    reboot_confirm_title: "Apparaat herstarten?",
    reboot_confirm_text: "Het apparaat herstart en is na ongeveer een minuut terug. De instellingen blijven bewaard.",
    rebooting: "Het apparaat herstart. Meld u opnieuw aan als het terug is, over ongeveer een minuut.",
    reset_intro: "Een fabrieksreset wist de instellingen en gekoppelde apps.",
    factory_reset: "Fabrieksreset",
    reset_confirm_title: "Fabrieksreset uitvoeren?",
    reset_confirm_text:
      "Alle instellingen (installatie, wifi, cloud) en gekoppelde apps worden gewist. Dit kan niet ongedaan worden gemaakt.",
    reset_done: "Het apparaat is teruggezet naar de fabrieksinstellingen.",
    reset_login: "Het apparaat is teruggezet naar de fabrieksinstellingen. Meld u aan met de pincode van het label.",
    cancel: "Annuleren",
    confirm: "Bevestigen",
    pin_title: "Pincode wijzigen",
    new_pin: "Nieuwe pincode",
    new_pin_hint: "Letters en cijfers[, {length} tekens].",
    confirm_pin: "Herhaal de nieuwe pincode",
    change_pin: "Pincode wijzigen",
    pin_changed: "De pincode is gewijzigd. Gebruik voortaan de nieuwe pincode.",
    pin_mismatch: "De twee pincodes verschillen.",
    clients_title: "Gekoppelde apps",
    clients_intro: "Apps zoals Home Assistant die met de pincode zijn gekoppeld.",
    clients_empty: "Geen gekoppelde apps.",
    client_meta: "Gekoppeld {created} · laatst gezien {last_seen}",
    never: "nooit",
    revoke: "Intrekken",
    revoke_label: "{name} intrekken",
    revoke_confirm_title: "{name} intrekken?",
    revoke_confirm_text: "Deze app kan het apparaat niet meer lezen tot hij opnieuw is gekoppeld.",
    revoked: "{name} is ingetrokken.",
    tab_emulator: "Emulator",
    emulator_intro:
      "Dit apparaat is geëmuleerd: stel in wat de meter meet en probeer de fouten die een installateur kan maken. Het tabblad Status en Home Assistant tonen wat het apparaat ziet.",
    emu_fault_title: "Aansluitfout",
    emu_fault: "Fout",
    fault_none: "Geen",
    fault_none_hint: "Aangesloten zoals de installatiehandleiding zegt.",
    fault_swapped_phases: "Twee fasen verwisseld",
    fault_swapped_phases_hint: "De spanningsvolgorde is omgekeerd.",
    fault_reversed_ct: "Stroomtang andersom",
    fault_reversed_ct_hint: "De pijl van de tang wijst tegen de stroom in.",
    fault_wrong_phase_ct: "Stroomtang op de verkeerde fase",
    fault_wrong_phase_ct_hint: "De tang zit om de geleider van de volgende fase.",
    fault_voltage_not_connected: "Spanning niet aangesloten",
    fault_voltage_not_connected_hint: "De spanningsingang van de fase meet niets.",
    fault_meter_offline: "Meter offline",
    fault_meter_offline_hint: "De meter antwoordt helemaal niet.",
    emu_fault_phase: "Op fase",
    emu_fault_phase_hint:
      "Verwisselde fasen ruilen deze fase met de volgende; een tang op de verkeerde fase zit om de geleider van de volgende.",
    emu_load_title: "Belasting",
    emu_load_hint: "Per fase, in A; een negatieve belasting levert terug[ ({minimum} tot {maximum} A)].",
    emu_load_l1: "Belasting op L1",
    emu_load_l2: "Belasting op L2",
    emu_load_l3: "Belasting op L3",
    emu_ev_title: "Elektrische auto",
    emu_ev_current: "Laadstroom per fase",
    emu_ev_hint: "0 stopt het laden; anders 6 A[ tot {maximum} A].",
    emu_ev_phases: "Laadt op",
    emu_ev_one: "1 fase (L1)",
    emu_ev_three: "3 fasen",
    emu_pv_title: "Zonnepanelen",
    emu_pv: "Zonnestroom",
    emu_pv_hint: "Verdeeld over de fasen; wat de belasting niet gebruikt, wordt teruggeleverd[ (tot {maximum} W)].",
    apply: "Toepassen",
    emu_chargers_title: "Laadpalen",
    emu_charger: "Laadpaal",
    emu_charger_managed: "beheerd",
    emu_charger_pending: "vraagt om beheer",
    emu_charger_state: "{name} ({managed}): biedt {offered} A, de auto trekt {draw} A.",
    emu_charger_no_car: "{name} ({managed}): geen auto.",
    emu_car: "Aangesloten auto",
    emu_car_none: "Geen",
    emu_car_one: "1 fase",
    emu_car_three: "3 fasen",
    emu_car_max: "Hoogste stroom van de auto per fase",
    emu_car_max_hint: "Wat de lader in de auto opneemt; de limiet van het apparaat kan minder geven[ ({minimum} tot {maximum} A)].",
    emu_car_ignores: "De auto negeert zijn limiet",
    emu_applied: "Toegepast. Het tabblad Status toont wat het apparaat ziet.",
    "field.emulator.load": "Voer een stroom[ van {minimum} tot {maximum} A] in.",
    "field.emulator.ev.current": "Voer 0 in om te stoppen, of een stroom van 6 A[ tot {maximum} A].",
    "field.emulator.pv": "Voer een vermogen[ van {minimum} tot {maximum} W] in.",
    "field.emulator.charger.car.max_current": "Voer een stroom in[ van {minimum} tot {maximum} A].",
    "field.installation.main_fuse": "Voer een geheel getal[ van {minimum} tot {maximum} A] in.",
    "field.installation.safety_margin": "Voer een marge[ van {minimum} tot {maximum} A] in.",
    "field.installation.grid_type": "Kies TN, TT of IT.",
    "field.installation.phases": "Kies 1-fase of 3-fase.",
    "field.installation.voltage_wiring": "Deze spanningsaansluiting past niet bij het netsysteem.",
    "field.installation.supply_voltage": "Voer een geheel getal[ van {minimum} tot {maximum} V] in.",
    "field.installation.current_scheme": "Elke stroomtang-ingang heeft een eigen fase nodig.",
    "field.wifi.ssid": "Voer een netwerknaam[ van hoogstens {maxBytes} bytes] in.",
    "field.wifi.passphrase": "Geen wifi-wachtwoord: te kort, te lang of met tekens die wifi niet toestaat.",
    "field.pin": "De pincode bestaat uit[ {length} tekens:] letters en cijfers.",
  },
};

export const LANGUAGES = Object.freeze(Object.keys(TEXTS));
const STORAGE_KEY = "amp-guard-language";
const listeners = new Set();
let current = "en";

/** The language from an earlier choice, else the browser's first supported preference. */
function preferredLanguage() {
  const stored = window.localStorage.getItem(STORAGE_KEY);
  if (stored && LANGUAGES.includes(stored)) return stored;
  for (const tag of navigator.languages || [navigator.language]) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (LANGUAGES.includes(base)) return base;
  }
  return "en";
}

export function language() {
  return current;
}

const PLACEHOLDER = /\{(\w+)\}/g;
const OPTIONAL = /\[([^\]]*)\]/g;

/** Translate ``key`` and fill {name} placeholders; unknown keys fall back to English.
 *  A [bracketed part] stays only when all its placeholders are given. */
export function t(key, params = {}) {
  const text = TEXTS[current][key] ?? TEXTS.en[key] ?? key;
  return text
    .replace(OPTIONAL, (match, part) =>
      [...part.matchAll(PLACEHOLDER)].every(([, name]) => name in params) ? part : "",
    )
    .replace(PLACEHOLDER, (match, name) => (name in params ? String(params[name]) : match));
}

/** A setting's served limits as text parameters in the user's language ({} if unknown):
 *  minimum, maximum, maxBytes, and length when the length is fixed. */
export function limitParams(name) {
  const schema = limitOf(name);
  if (!schema) return {};
  const format = new Intl.NumberFormat(current);
  const { minLength, maxLength } = lengthsOf(schema);
  const values = {
    minimum: schema.minimum,
    maximum: schema.maximum,
    maxBytes: schema["x-max-bytes"],
    length: minLength === maxLength ? minLength : undefined,
  };
  const params = {};
  for (const [param, value] of Object.entries(values)) {
    if (typeof value === "number") params[param] = format.format(value);
  }
  return params;
}

/** Whether a translation exists (used to prefer our own wording of a field rule). */
export function has(key) {
  return key in TEXTS[current] || key in TEXTS.en;
}

export function translateTree(root) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(element.dataset.i18n, limitParams(element.dataset.i18nLimit));
  }
  for (const element of root.querySelectorAll("[data-i18n-aria-label]")) {
    element.setAttribute("aria-label", t(element.dataset.i18nAriaLabel));
  }
}

export function setLanguage(lang, { remember = true } = {}) {
  current = LANGUAGES.includes(lang) ? lang : "en";
  if (remember) window.localStorage.setItem(STORAGE_KEY, current);
  document.documentElement.lang = current;
  translateTree(document);
  for (const listener of listeners) listener(current);
}

export function onLanguageChange(listener) {
  listeners.add(listener);
}

export function initLanguage() {
  setLanguage(preferredLanguage(), { remember: false });
}

/** Render every text again, e.g. once the unit's limits have arrived. */
export function refreshTexts() {
  setLanguage(current, { remember: false });
}

/** Join names as the user's language does: "L2 and L3", "L2 en L3". */
export function formatList(items) {
  return new Intl.ListFormat(current, { style: "long", type: "conjunction" }).format(items);
}

/** Format a number in the user's language with a fixed number of decimals. */
export function formatNumber(value, decimals) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return new Intl.NumberFormat(current, {
    minimumFractionDigits: decimals,
    maximumFractionDigits: decimals,
  }).format(value);
}

/** Times in 24-hour format for Dutch; otherwise the browser's own format, so an English
 *  page in a 12-hour country reads "2:05 PM" and in a 24-hour one "14:05". */
function timeFormat(options) {
  if (current === "nl") return new Intl.DateTimeFormat("nl", { ...options, hourCycle: "h23" });
  const browser = navigator.languages?.[0] || navigator.language;
  return new Intl.DateTimeFormat(browser, options);
}

export function formatDateTime(iso) {
  if (!iso) return t("never");
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return timeFormat({ dateStyle: "medium", timeStyle: "short" }).format(date);
}

export function formatTime(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "–";
  return timeFormat({ timeStyle: "medium" }).format(date);
}
