"""The OpenAPI 3.1 document of the local API (served at ``/api/v1/openapi.json``).

Push messages and the native ``/ws`` protocol are described beside it in docs/api.md;
a test checks that every route of the application is documented here and vice versa.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from bridge import API_VERSION

if TYPE_CHECKING:
    from bridge.unit import AmpGuardUnit

JSON: Final = "application/json"
SECURED: Final[list[dict[str, list[str]]]] = [{"token": []}, {"session": []}]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": schema}}}


def _reply(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"description": description}
    if schema is not None:
        reply["content"] = {JSON: {"schema": schema}}
    return reply


def _error(description: str) -> dict[str, Any]:
    return _reply(description, _ref("Error"))


def _op(
    summary: str,
    responses: dict[str, dict[str, Any]],
    *,
    secured: bool = True,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": dict(responses)}
    if secured:
        operation["security"] = SECURED
        operation["responses"]["401"] = _error("No, unknown or revoked token / session")
    else:
        operation["security"] = []
    if body is not None:
        operation["requestBody"] = _body(body)
        operation["responses"].setdefault("400", _error("Body is not a JSON object"))
    return operation


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


NUMBER: Final = {"type": "number"}
INTEGER: Final = {"type": "integer"}
STRING: Final = {"type": "string"}
BOOLEAN: Final = {"type": "boolean"}
NULLABLE_NUMBER: Final = {"type": ["number", "null"]}
NULLABLE_STRING: Final = {"type": ["string", "null"]}
PHASE: Final = {"type": "string", "enum": ["L1", "L2", "L3"]}
PER_PHASE: Final = {"type": "object", "propertyNames": PHASE, "additionalProperties": NUMBER}
TRIPLE: Final = {"type": "array", "items": NUMBER, "minItems": 3, "maxItems": 3}

SCHEMAS: Final[dict[str, Any]] = {
    "Error": _obj(
        {
            "error": _obj(
                {
                    "code": {
                        "type": "string",
                        "enum": [
                            "bad_request",
                            "serial_mismatch",
                            "unauthorized",
                            "invalid_pin",
                            "not_found",
                            "method_not_allowed",
                            "validation",
                            "locked_out",
                            "busy",
                            "internal",
                        ],
                    },
                    "message": STRING,
                    "field": STRING,
                    "retry_after": INTEGER,
                },
                ["code", "message"],
            )
        },
        ["error"],
    ),
    "Info": _obj(
        {
            "serial": STRING,
            "model": STRING,
            "firmware": STRING,
            "api_version": STRING,
            "name": STRING,
        },
        ["serial", "model", "firmware", "api_version", "name"],
    ),
    "PairRequest": _obj(
        {"serial": STRING, "pin": STRING, "client_name": {"type": "string", "maxLength": 64}},
        ["serial", "pin", "client_name"],
    ),
    "PairReply": _obj({"token": STRING, "client_id": STRING}, ["token", "client_id"]),
    "Clients": _obj(
        {
            "clients": {
                "type": "array",
                "items": _obj(
                    {
                        "id": STRING,
                        "name": STRING,
                        "created": {"type": "string", "format": "date-time"},
                        "last_seen": {"type": ["string", "null"], "format": "date-time"},
                    },
                    ["id", "name", "created", "last_seen"],
                ),
            }
        },
        ["clients"],
    ),
    "PhaseReading": _obj(
        {
            "phase": PHASE,
            "voltage": NUMBER,
            "current": NUMBER,
            "power": NUMBER,
            "power_factor": NUMBER,
            "angle": NUMBER,
            "voltage_angle": NUMBER,
            "energy_import": NUMBER,
            "energy_export": NUMBER,
            "available_current": NULLABLE_NUMBER,
        },
        ["phase", "voltage", "current", "power", "power_factor", "angle", "voltage_angle"],
    ),
    "Reading": _obj(
        {
            "timestamp": {"type": "string", "format": "date-time"},
            "sequence": INTEGER,
            "frequency": NUMBER,
            "total_power": NUMBER,
            "energy_import": NUMBER,
            "energy_export": NUMBER,
            "voltage_assumed": BOOLEAN,
            "clock_synchronised": BOOLEAN,
            "phases": {"type": "array", "items": _ref("PhaseReading"), "minItems": 3},
        },
        ["timestamp", "sequence", "frequency", "phases"],
    ),
    "Readings": _obj(
        {
            "available": BOOLEAN,
            "error": NULLABLE_STRING,
            "reading": {"oneOf": [_ref("Reading"), {"type": "null"}]},
        },
        ["available", "error", "reading"],
    ),
    "Indicator": _obj(
        {
            "state": STRING,
            "light": {"type": "string", "enum": ["green", "blue", "red", "off"]},
            "phases": {"type": "object", "additionalProperties": STRING},
            "detail": NULLABLE_STRING,
        },
        ["state", "light", "phases", "detail"],
    ),
    "Status": {
        **_obj(
            {
                "power": BOOLEAN,
                "communication": {"type": "string", "enum": ["cloud", "network", "none"]},
                "communication_light": {"type": "string", "enum": ["green", "blue", "off"]},
                "voltage": _ref("Indicator"),
                "current": _ref("Indicator"),
                "meter_available": BOOLEAN,
                "meter_error": NULLABLE_STRING,
                "settings_error": NULLABLE_STRING,
            },
            ["power", "communication", "communication_light", "voltage", "current"],
        ),
        # Components add their own objects (cloud, wifi, setup_ap, modbus_server, ...).
        "additionalProperties": {"type": "object"},
    },
    "Settings": _obj(
        {
            "installation": _obj(
                {
                    "main_fuse": {"type": "integer", "minimum": 6, "maximum": 63},
                    "grid_type": {"type": "string", "enum": ["TN", "TT", "IT"]},
                    "phases": {"type": "integer", "enum": [1, 3]},
                    "generation": BOOLEAN,
                    "voltage_wiring": {"type": "string", "enum": ["all", "one", "it_l1_l2"]},
                    "supply_voltage": {"type": "integer", "minimum": 85, "maximum": 256},
                    "safety_margin": {"type": "number", "minimum": 0, "maximum": 20},
                    "current_scheme": {
                        "type": "array",
                        "minItems": 3,
                        "maxItems": 3,
                        "items": _obj({"phase": PHASE, "reversed": BOOLEAN}, ["phase"]),
                    },
                }
            ),
            "wifi": _obj(
                {
                    "ssid": {"type": "string", "maxLength": 32},
                    "passphrase": {"type": "string", "writeOnly": True},
                    "passphrase_set": {"type": "boolean", "readOnly": True},
                }
            ),
            "cloud": _obj(
                {
                    "enabled": BOOLEAN,
                    "host": STRING,
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "tls": BOOLEAN,
                    "ca_file": STRING,
                    "client_cert": STRING,
                    "client_key": STRING,
                    "username": STRING,
                    "password": {"type": "string", "writeOnly": True},
                    "password_set": {"type": "boolean", "readOnly": True},
                    "topic_prefix": STRING,
                    "interval": {"type": "number", "minimum": 0.2, "maximum": 3600},
                    "outbox_max_messages": INTEGER,
                    "outbox_max_age_hours": INTEGER,
                }
            ),
            "calibration": _obj(
                {"voltage_gain": TRIPLE, "current_gain": TRIPLE, "phase_shift": TRIPLE}
            ),
        }
    ),
    "Session": _obj(
        {"csrf_token": STRING, "expires": {"type": "string", "format": "date-time"}},
        ["csrf_token", "expires"],
    ),
    "EmulatorControl": {
        **_obj(
            {
                "load": PER_PHASE,
                "voltage": PER_PHASE,
                "ev": _obj({"current": NUMBER, "phases": {"type": "integer", "enum": [1, 3]}}),
                "pv": NUMBER,
                "phases": {"type": "integer", "enum": [1, 3]},
                "fault": {
                    "type": ["string", "null"],
                    "enum": [
                        "swapped_phases",
                        "reversed_ct",
                        "wrong_phase_ct",
                        "voltage_not_connected",
                        "meter_offline",
                        None,
                    ],
                },
                "fault_phase": PHASE,
            }
        ),
        "additionalProperties": False,
    },
    "EmulatorState": {"type": "object"},
}

VALIDATION_ERROR: Final = _error("A value breaks a rule: field and rule in the error")
LOCKED: Final = _error("Too many wrong PINs from this address; see Retry-After")
BAD_PIN: Final = _error("Wrong PIN (counts towards the lock-out)")

PATHS: Final[dict[str, dict[str, Any]]] = {
    "/api/v1/info": {
        "get": _op("Who the unit is", {"200": _reply("Info", _ref("Info"))}, secured=False)
    },
    "/api/v1/pair": {
        "post": _op(
            "Pair a client with serial and PIN",
            {
                "201": _reply("A token for the client", _ref("PairReply")),
                "400": _error("Bad body or serial_mismatch"),
                "401": BAD_PIN,
                "429": LOCKED,
            },
            secured=False,
            body=_ref("PairRequest"),
        )
    },
    "/api/v1/clients": {
        "get": _op("List paired clients", {"200": _reply("Clients", _ref("Clients"))})
    },
    "/api/v1/clients/{client_id}": {
        "delete": {
            **_op(
                "Revoke a paired client",
                {"204": _reply("Revoked"), "404": _error("No such client")},
            ),
            "parameters": [{"name": "client_id", "in": "path", "required": True, "schema": STRING}],
        }
    },
    "/api/v1/readings": {
        "get": _op("The latest reading", {"200": _reply("Readings", _ref("Readings"))})
    },
    "/api/v1/status": {
        "get": _op("The status indicators", {"200": _reply("Status", _ref("Status"))})
    },
    "/api/v1/state": {
        "get": _op(
            "Info, readings and status in one reply",
            {
                "200": _reply(
                    "State",
                    _obj(
                        {
                            "info": _ref("Info"),
                            "readings": _ref("Readings"),
                            "status": _ref("Status"),
                        },
                        ["info", "readings", "status"],
                    ),
                )
            },
        )
    },
    "/api/v1/settings": {
        "get": _op(
            "The settings (secrets as *_set)", {"200": _reply("Settings", _ref("Settings"))}
        ),
        "patch": _op(
            "Change settings (deep merge)",
            {"200": _reply("The new settings", _ref("Settings")), "422": VALIDATION_ERROR},
            body=_ref("Settings"),
        ),
    },
    "/api/v1/pin": {
        "post": _op(
            "Change the PIN",
            {"204": _reply("Changed"), "422": VALIDATION_ERROR},
            body=_obj({"pin": {"type": "string", "minLength": 8, "maxLength": 8}}, ["pin"]),
        )
    },
    "/api/v1/system/reboot": {
        "post": _op("Restart the bridge process", {"202": _reply("Restarting")})
    },
    "/api/v1/system/factory-reset": {
        "post": _op(
            "Default settings, no paired clients, the label's PIN",
            {"202": _reply("Reset")},
            body=_obj({"confirm": {"const": True}}, ["confirm"]),
        )
    },
    "/api/v1/push": {
        "get": _op(
            "WebSocket push channel (messages: docs/api.md)",
            {"101": _reply("Switching to WebSocket")},
        )
    },
    "/api/v1/emulator": {
        "get": _op(
            "The emulator's control values",
            {
                "200": _reply("Controls", _ref("EmulatorState")),
                "404": _error("Not emulated"),
            },
        ),
        "post": _op(
            "Drive the emulator",
            {
                "200": _reply("Controls", _ref("EmulatorState")),
                "404": _error("Not emulated"),
                "422": VALIDATION_ERROR,
            },
            body=_ref("EmulatorControl"),
        ),
    },
    "/api/v1/session": {
        "post": _op(
            "Log the web UI in with the PIN",
            {
                "200": _reply("Session (cookie ag_session)", _ref("Session")),
                "401": BAD_PIN,
                "429": LOCKED,
            },
            secured=False,
            body=_obj({"pin": STRING}, ["pin"]),
        ),
        "get": _op("The current session", {"200": _reply("Session", _ref("Session"))}),
        "delete": _op("Log out", {"204": _reply("Logged out")}),
    },
    "/api/v1/openapi.json": {
        "get": _op("This document", {"200": _reply("OpenAPI 3.1")}, secured=False)
    },
    "/ws": {
        "get": _op(
            "The real unit's native protocol (text frames, permessage-deflate; docs/api.md)",
            {"101": _reply("Switching to WebSocket")},
            secured=False,
        )
    },
}


def openapi_document(unit: AmpGuardUnit | None = None) -> dict[str, Any]:
    """Build the document; the unit adds its serial to the description."""
    description = "Local API of the Amp Guard bridge."
    if unit is not None:
        description += f" Unit {unit.identity.serial}."
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Amp Guard local API",
            "version": API_VERSION,
            "description": description,
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "ag_session"},
            },
        },
    }
