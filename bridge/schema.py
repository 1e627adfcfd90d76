"""Declarative models: each field's type and limits are declared once and read by all.

A model is a frozen dataclass whose fields carry their rules as ``Annotated`` metadata
(``Range``, ``OneOf``, ``Length``, ``Pattern``, ``Unique``) and their presentation
(``Unit``, ``Round``, ``Secret``, ``OMIT_EMPTY``, ``Doc``). From that one declaration:

- ``decode`` turns JSON into a model, naming the dotted field and the broken rule;
- ``check`` applies the same rules to a model built in code (call it in
  ``__post_init__``), so a value from the API and one from Python meet the same rules;
- ``encode`` turns a model into JSON-ready data (enums as values, rounding, secrets);
- ``SchemaBuilder`` writes the JSON Schema the OpenAPI document serves;
- ``limits`` gives the web UI and the integration each field's bounds.

Plain dataclasses and ``Annotated`` need nothing beyond the standard library, run on
the SBC's Python 3.11 and keep strict mypy's view of every field; docs/bridge.md says
why this was chosen over pydantic, msgspec and mashumaro.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import operator
import re
import types
import typing
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar, Final, Literal, Protocol, TypeVar, Union

_M = TypeVar("_M")

JSON_REF_PREFIX: Final = "#/components/schemas/"


class ValidationError(ValueError):
    """A value breaks a rule; ``field`` is its dotted path, ``message`` the rule in words.

    ``shape`` is True when the value has the wrong form (type, unknown or missing key)
    rather than breaking a limit, so an API can answer the two differently.
    """

    def __init__(self, field: str, message: str, *, shape: bool = False) -> None:
        """Keep the field and the rule apart so the API can report both."""
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.shape = shape


# Rules


class Constraint(Protocol):
    """A rule on a value: why it fails (or None), and the same rule as JSON Schema."""

    def violation(self, value: Any) -> str | None:  # noqa: ANN401 - any JSON value
        """Say why ``value`` breaks the rule, None when it does not."""

    def schema(self) -> dict[str, Any]:
        """Return the rule as JSON Schema keywords."""


def _number(value: float) -> float | int:
    """Show 6.0 as 6 in the schema, as a person would write the limit."""
    return int(value) if float(value).is_integer() else value


@dataclasses.dataclass(frozen=True, slots=True)
class Range:
    """A number within ``minimum``..``maximum`` (both included), in ``unit``."""

    minimum: float
    maximum: float
    unit: str = ""

    def violation(self, value: Any) -> str | None:  # noqa: ANN401 - a number
        """Say so when the number is outside the range."""
        if self.minimum <= value <= self.maximum:
            return None
        suffix = f" {self.unit}" if self.unit else ""
        return f"must be between {self.minimum:g} and {self.maximum:g}{suffix}"

    def schema(self) -> dict[str, Any]:
        """Return ``minimum`` and ``maximum`` (and the unit as ``x-unit``)."""
        schema: dict[str, Any] = {
            "minimum": _number(self.minimum),
            "maximum": _number(self.maximum),
        }
        if self.unit:
            schema["x-unit"] = self.unit
        return schema


@dataclasses.dataclass(frozen=True, slots=True, init=False)
class OneOf:
    """One of a few allowed values (numbers; enums are types of their own)."""

    values: tuple[Any, ...]

    def __init__(self, *values: Any) -> None:  # noqa: ANN401 - JSON scalars
        """List the allowed values."""
        object.__setattr__(self, "values", values)

    def violation(self, value: Any) -> str | None:  # noqa: ANN401 - a scalar
        """Name the allowed values when ``value`` is not one of them."""
        if value in self.values:
            return None
        words = [json.dumps(item) for item in self.values]
        return "must be " + (" or ".join(words) if len(words) <= 2 else ", ".join(words))  # noqa: PLR2004

    def schema(self) -> dict[str, Any]:
        """Return ``enum``."""
        return {"enum": list(self.values)}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Length:
    """A text of at most ``maximum`` (and at least ``minimum``) characters, or bytes."""

    maximum: int
    minimum: int = 0
    # 802.11 counts an SSID in bytes of UTF-8, not in characters.
    in_bytes: bool = False
    message: str | None = None

    def violation(self, value: Any) -> str | None:  # noqa: ANN401 - a text
        """Say so when the text is too long or too short."""
        size = len(value.encode()) if self.in_bytes else len(value)
        if self.minimum <= size <= self.maximum:
            return None
        if self.message is not None:
            return self.message
        unit = "bytes" if self.in_bytes else "characters"
        if self.minimum:
            return f"must be {self.minimum} to {self.maximum} {unit}"
        return f"must be at most {self.maximum} {unit}"

    def schema(self) -> dict[str, Any]:
        """Return ``maxLength`` (and ``minLength``); bytes are at least as many as characters."""
        schema: dict[str, Any] = {"maxLength": self.maximum}
        if self.minimum:
            schema["minLength"] = self.minimum
        if self.in_bytes:
            schema["x-max-bytes"] = self.maximum
        return schema


@dataclasses.dataclass(frozen=True, slots=True)
class Pattern:
    """A text that matches a regular expression as a whole."""

    regex: str
    message: str

    def violation(self, value: Any) -> str | None:  # noqa: ANN401 - a text
        """Return the message when the text does not match."""
        return None if re.fullmatch(self.regex, value) else self.message

    def schema(self) -> dict[str, Any]:
        """Return ``pattern`` (anchored, as JSON Schema patterns are not) and its words."""
        return {"pattern": f"^(?:{self.regex})$", "x-rule": self.message}


@dataclasses.dataclass(frozen=True, slots=True)
class Unique:
    """A list whose items differ in ``key`` (applies to the list, not to each item)."""

    key: str
    message: str

    applies_to_items: ClassVar[bool] = False

    def violation(self, value: Any) -> str | None:  # noqa: ANN401 - a sequence
        """Return the message when two items share the key."""
        keys = [getattr(item, self.key) for item in value]
        return None if len(set(keys)) == len(keys) else self.message

    def schema(self) -> dict[str, Any]:
        """JSON Schema cannot say this of one key; the rule is in the description."""
        return {}


# Presentation


@dataclasses.dataclass(frozen=True, slots=True)
class Unit:
    """The unit a number is in (``A``, ``V``, ``W``, ``kWh``, ...)."""

    symbol: str


@dataclasses.dataclass(frozen=True, slots=True)
class Round:
    """Round a number to this many decimals when it is served."""

    digits: int


@dataclasses.dataclass(frozen=True, slots=True)
class Items:
    """What the items of a fixed-length list are called, for its error message."""

    noun: str


@dataclasses.dataclass(frozen=True, slots=True)
class Doc:
    """What a field means, for the document."""

    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class Secret:
    """A write-only value: served as a ``<name>_set`` flag, never itself."""


SECRET: Final = Secret()


@dataclasses.dataclass(frozen=True, slots=True)
class OmitEmpty:
    """Left out of the served object while None or empty.

    For a field that only some units have (what one kind of meter adds): the replies
    of every other unit stay byte for byte what they were before the field existed.
    """


OMIT_EMPTY: Final = OmitEmpty()


# Fields


@dataclasses.dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a model with everything declared about it."""

    name: str
    type: Any
    rules: tuple[Constraint, ...]
    required: bool
    unit: str | None
    digits: int | None
    doc: str | None
    secret: bool
    items: str = "values"
    omit_empty: bool = False


def _resolve_type_vars(model: type) -> dict[Any, Any]:
    """Map the type variables of generic bases to the arguments this model gives them."""
    mapping: dict[Any, Any] = {}
    for base in getattr(model, "__orig_bases__", ()):
        origin = typing.get_origin(base)
        parameters = getattr(origin, "__parameters__", ())
        mapping.update(zip(parameters, typing.get_args(base), strict=False))
    return mapping


_FIELDS: dict[type[Any], tuple[FieldSpec, ...]] = {}


def fields_of(model: type[Any]) -> tuple[FieldSpec, ...]:
    """Return the declared fields of a dataclass model, in declaration order (cached)."""
    known = _FIELDS.get(model)
    if known is None:
        known = _FIELDS[model] = _read_fields(model)
    return known


def _read_fields(model: type[Any]) -> tuple[FieldSpec, ...]:
    if not dataclasses.is_dataclass(model):
        raise TypeError(f"{model!r} is not a dataclass model")
    hints = typing.get_type_hints(model, include_extras=True)
    type_vars = _resolve_type_vars(model)
    specs: list[FieldSpec] = []
    for field in dataclasses.fields(model):
        hint = hints[field.name]
        metadata: tuple[Any, ...] = ()
        if typing.get_origin(hint) is typing.Annotated:
            hint, *extra = typing.get_args(hint)
            metadata = tuple(extra)
        hint = _substitute(hint, type_vars)
        specs.append(
            FieldSpec(
                name=field.name,
                type=hint,
                rules=tuple(item for item in metadata if hasattr(item, "violation")),
                required=field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
                and field.init,
                unit=_unit_of(metadata),
                digits=next((item.digits for item in metadata if isinstance(item, Round)), None),
                doc=next((item.text for item in metadata if isinstance(item, Doc)), None),
                secret=any(isinstance(item, Secret) for item in metadata),
                items=next((item.noun for item in metadata if isinstance(item, Items)), "values"),
                omit_empty=any(isinstance(item, OmitEmpty) for item in metadata),
            )
        )
    return tuple(specs)


def _unit_of(metadata: tuple[Any, ...]) -> str | None:
    """Return the declared unit: a ``Unit``, else a ``Range``'s, else None."""
    for item in metadata:
        if isinstance(item, Unit):
            return item.symbol
    for item in metadata:
        if isinstance(item, Range) and item.unit:
            return item.unit
    return None


def secret_fields(model: type) -> tuple[str, ...]:
    """Name the write-only fields of a model."""
    return tuple(spec.name for spec in fields_of(model) if spec.secret)


def _applies_to_items(rule: Constraint) -> bool:
    return bool(getattr(rule, "applies_to_items", True))


def _is_sequence(kind: Any) -> bool:  # noqa: ANN401 - a type
    return typing.get_origin(kind) in (tuple, list)


def _apply_rules(spec: FieldSpec, value: Any, path: str) -> None:  # noqa: ANN401
    """Raise on the first rule ``value`` breaks.

    Rules on a list or a map apply to each of its items (``Unique`` to the whole).
    """
    if value is None:
        return
    for rule in spec.rules:
        if isinstance(value, tuple | list) and _applies_to_items(rule):
            items = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
        elif isinstance(value, dict) and _applies_to_items(rule):
            items = [(f"{path}.{_key_name(key)}", item) for key, item in value.items()]
        else:
            items = [(path, value)]
        for where, item in items:
            if (message := rule.violation(item)) is not None:
                raise ValidationError(where, message)


def _key_name(key: object) -> str:
    return str(key.value) if isinstance(key, Enum) else str(key)


def check(instance: object, prefix: str = "") -> None:
    """Apply every declared rule to a model built in code (from ``__post_init__``)."""
    for spec in fields_of(type(instance)):
        _apply_rules(spec, getattr(instance, spec.name), _join(prefix, spec.name))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# Decoding

# No model of the unit nests deeper than a few levels: this bounds every parse (and
# the decoder's recursion) far below Python's recursion limit.
MAX_JSON_DEPTH: Final = 32
_JSON_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_BRACKET: Final = re.compile(r"[\[\]{}]")


class JsonTextError(ValueError):
    """Text that is not JSON the unit takes: the message says why, without the text."""


def _refuse_constant(name: str) -> object:
    raise JsonTextError(f"{name} is not a JSON number")


def parse_json(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> object:
    """Parse JSON text bounded in depth; raise ``JsonTextError``, never anything else.

    ``json.loads`` alone raises ``RecursionError`` on deep nesting, ``ValueError`` on
    a whole number of more than 4,300 digits and takes ``NaN``, which JSON has not.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise JsonTextError(f"is not UTF-8 text (byte {err.start})") from err
    depth = 0
    for bracket in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > max_depth:
            raise JsonTextError(f"nests deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except JsonTextError:
        raise
    except json.JSONDecodeError as err:
        raise JsonTextError(f"is not valid JSON: {err.msg} at line {err.lineno}") from err
    except (ValueError, RecursionError) as err:
        # Past the 4,300-digit limit of int(); the depth check leaves no recursion.
        raise JsonTextError(f"is not JSON the unit takes: {err}") from err


def decode(
    model: type[_M],
    data: object,
    *,
    name: str = "body",
    prefix: str = "",
    unknown: str = "unknown key",
) -> _M:
    """Build ``model`` from JSON data; raise ``ValidationError`` naming the field.

    ``name`` is what the whole is called when it is not an object; ``prefix`` starts
    every field's dotted path; ``unknown`` is the words for a key the model lacks.
    """
    if not isinstance(data, dict):
        raise ValidationError(prefix or name, "must be an object", shape=True)
    return typing.cast("_M", _decode_model(model, data, prefix, unknown))


def _decode_model(model: type, data: dict[str, Any], prefix: str, unknown: str) -> object:
    specs = {spec.name: spec for spec in fields_of(model) if spec.name in _init_fields(model)}
    for key in data:
        if key not in specs:
            raise ValidationError(_join(prefix, str(key)), unknown, shape=True)
    values: dict[str, Any] = {}
    for spec in specs.values():
        path = _join(prefix, spec.name)
        if spec.name not in data:
            if spec.required:
                raise ValidationError(path, "is required", shape=True)
            continue
        value = _decode_value(spec.type, data[spec.name], path, unknown, spec.items)
        _apply_rules(spec, value, path)
        values[spec.name] = value
    try:
        return model(**values)
    except ValidationError as err:
        # A rule of the model itself (``__post_init__``) speaks of its own fields.
        if prefix and not err.field.startswith(prefix):
            raise ValidationError(_join(prefix, err.field), err.message) from err
        raise


def _substitute(hint: Any, type_vars: dict[Any, Any]) -> Any:  # noqa: ANN401 - a type
    """Replace type variables in ``hint`` (also inside ``dict[Phase, T]`` and the like)."""
    if not type_vars:
        return hint
    if hint in type_vars:
        return type_vars[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is None or not args:
        return hint
    substituted = tuple(_substitute(arg, type_vars) for arg in args)
    if origin in (Union, types.UnionType):
        return functools.reduce(operator.or_, substituted)
    return origin[substituted]


@functools.cache
def _init_fields(model: type) -> frozenset[str]:
    return frozenset(field.name for field in dataclasses.fields(model) if field.init)


def _decode_value(  # noqa: C901, PLR0911, PLR0912
    kind: Any,  # noqa: ANN401 - a type
    value: Any,  # noqa: ANN401 - JSON data
    path: str,
    unknown: str,
    items: str = "values",
) -> Any:  # noqa: ANN401 - what the type says
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        others = [arg for arg in args if arg is not type(None)]
        if len(others) != 1:
            raise TypeError(f"{path}: only X | None unions are supported")
        try:
            return _decode_value(others[0], value, path, unknown, items)
        except ValidationError as err:
            # Only a rule on the value itself allows null too, not one inside a model.
            if (
                type(None) not in args
                or err.field != path
                or not err.message.startswith("must be ")
            ):
                raise
            # Say that null is allowed too: "must be null or one of ...".
            words = "must be null or " + err.message.removeprefix("must be ")
            raise ValidationError(err.field, words, shape=err.shape) from err
    if kind is bool:
        if not isinstance(value, bool):
            raise ValidationError(path, "must be true or false", shape=True)
        return value
    if kind is int:
        return _as_int(value, path)
    if kind is float:
        return _as_float(value, path)
    if kind is str:
        return _as_text(value, path)
    if kind is datetime:
        try:
            return datetime.fromisoformat(_as_text(value, path))
        except ValueError as err:
            raise ValidationError(path, "must be an ISO 8601 time", shape=True) from err
    if isinstance(kind, type) and issubclass(kind, Enum):
        return _as_choice(kind, value, path)
    if origin is Literal:
        if value not in args:
            raise ValidationError(path, f"must be {args[0]!r}", shape=True)
        return value
    if origin in (tuple, list):
        return _as_sequence(origin, args, value, path, unknown, items)
    if origin is dict:
        return _as_mapping(args, value, path, unknown)
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ValidationError(path, "must be an object", shape=True)
        return _decode_model(typing.cast("type", kind), value, path, unknown)
    raise TypeError(f"{path}: cannot decode {kind!r}")


def _as_int(value: object, path: str) -> int:
    # JSON has one number type: 25.0 is a fine 25, 25.5 is not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(path, "must be a whole number", shape=True)
    return value


def _as_float(value: object, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(path, "must be a number", shape=True)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf  # a whole number too large for a float is no finite number
    if not math.isfinite(number):
        raise ValidationError(path, "must be a finite number")
    return number


def _as_text(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(path, "must be text", shape=True)
    if "\x00" in value:
        raise ValidationError(path, "must not contain NUL characters")
    try:
        value.encode()
    except UnicodeEncodeError as err:
        # A lone surrogate (\ud800) decodes from JSON but can be stored or sent nowhere.
        raise ValidationError(path, "must be valid Unicode text") from err
    return value


def _as_choice(kind: type[Enum], value: object, path: str) -> Enum:
    for member in kind:
        if member.value == value and type(value) is type(member.value):
            return member
    options = ", ".join(str(member.value) for member in kind)
    # A value outside the allowed set breaks a limit, as a number out of range does.
    raise ValidationError(path, f"must be one of {options}")


def _as_sequence(  # noqa: PLR0917 - the decoder's state, passed down
    origin: Any,  # noqa: ANN401 - tuple or list
    args: tuple[Any, ...],
    value: object,
    path: str,
    unknown: str,
    noun: str,
) -> tuple[Any, ...] | list[Any]:
    if not isinstance(value, list):
        raise ValidationError(path, "must be a list", shape=True)
    if origin is tuple and (len(args) != 2 or args[1] is not Ellipsis):  # noqa: PLR2004
        if len(value) != len(args):
            raise ValidationError(path, f"must list {len(args)} {noun}", shape=True)
        kinds = list(args)
    else:
        kinds = [args[0]] * len(value)
    decoded = [
        _decode_value(kind, item, f"{path}[{index}]", unknown)
        for index, (kind, item) in enumerate(zip(kinds, value, strict=True))
    ]
    return tuple(decoded) if origin is tuple else decoded


def _as_mapping(args: tuple[Any, ...], value: object, path: str, unknown: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ValidationError(path, "must be an object", shape=True)
    key_kind, value_kind = args
    result: dict[Any, Any] = {}
    for key, item in value.items():
        where = f"{path}.{key}"
        if isinstance(key_kind, type) and issubclass(key_kind, Enum):
            try:
                parsed_key: Any = key_kind(key)
            except ValueError as err:
                raise ValidationError(where, unknown, shape=True) from err
        else:
            parsed_key = key
        result[parsed_key] = _decode_value(value_kind, item, where, unknown)
    return result


# Encoding


def encode(value: Any, *, public: bool = False) -> Any:  # noqa: ANN401 - JSON-ready data
    """Turn a model (or a value inside one) into JSON-ready data.

    With ``public``, each secret is replaced by a ``<name>_set`` flag after the others.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data: dict[str, Any] = {}
        flags: dict[str, bool] = {}
        for spec in fields_of(type(value)):
            item = getattr(value, spec.name)
            if public and spec.secret:
                flags[f"{spec.name}_set"] = bool(item)
                continue
            if spec.omit_empty and (item is None or item in ((), [], {})):
                continue
            data[spec.name] = _encode_field(item, spec.digits, public=public)
        data.update(flags)
        return data
    return _encode_field(value, None, public=public)


def _encode_field(value: Any, digits: int | None, *, public: bool) -> Any:  # noqa: ANN401, PLR0911
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float):
        return value if digits is None else round(value, digits)
    if isinstance(value, tuple | list):
        return [_encode_field(item, digits, public=public) for item in value]
    if isinstance(value, dict):
        return {
            _encode_field(key, None, public=public): _encode_field(item, digits, public=public)
            for key, item in value.items()
        }
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return encode(value, public=public)
    return value


# JSON Schema


class SchemaBuilder:
    """Write JSON Schemas of models, each named model once under ``definitions``."""

    def __init__(self) -> None:
        """Start with no definitions."""
        self.definitions: dict[str, dict[str, Any]] = {}
        self._models: dict[str, type] = {}

    def ref(self, model: type) -> dict[str, Any]:
        """Return a ``$ref`` to ``model``, defining it (and what it uses) first."""
        name = schema_name(model)
        known = self._models.get(name)
        if known is not None and known is not model:
            raise ValueError(f"two models are called {name}: {known!r} and {model!r}")
        if known is None:
            self._models[name] = model
            self.definitions[name] = {}  # placeholder: a model may refer to itself
            self.definitions[name] = self.model_schema(model)
        return {"$ref": JSON_REF_PREFIX + name}

    def model_schema(self, model: type) -> dict[str, Any]:
        """Return the object schema of a model (closed: unknown keys are refused)."""
        properties: dict[str, Any] = {}
        required: list[str] = []
        for spec in fields_of(model):
            field_schema = self.field_schema(spec)
            if spec.secret:
                properties[spec.name] = {**field_schema, "writeOnly": True}
                properties[f"{spec.name}_set"] = {"type": "boolean", "readOnly": True}
                continue
            properties[spec.name] = field_schema
            if spec.required:
                required.append(spec.name)
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        extra = getattr(model, "EXTRA_PROPERTIES", None)
        schema["additionalProperties"] = False if extra is None else self.type_schema(extra)
        description = (model.__doc__ or "").strip().split("\n", 1)[0]
        if description:
            schema["description"] = description
        return schema

    def field_schema(self, spec: FieldSpec) -> dict[str, Any]:
        """Return a field's schema: its type with its rules, unit and description."""
        schema = self.type_schema(spec.type)
        rules = [rule.schema() for rule in spec.rules]
        targets = _item_schemas(schema)
        if targets[0] is not schema:
            # Rules on a list or a map speak of its items (as the decoder applies them).
            for item in targets:
                for item_rule in spec.rules:
                    if _applies_to_items(item_rule):
                        _merge(item, item_rule.schema())
            rules = [r.schema() for r in spec.rules if not _applies_to_items(r)]
        for rule_schema in rules:
            _merge(schema, rule_schema)
        if spec.unit is not None:
            for item in targets:
                item["x-unit"] = spec.unit
        if spec.doc is not None:
            schema["description"] = spec.doc
        return schema

    def type_schema(self, kind: Any) -> dict[str, Any]:  # noqa: ANN401, C901, PLR0911, PLR0912
        """Return the schema of a type (scalars, enums, lists, maps, models, X | None)."""
        origin = typing.get_origin(kind)
        args = typing.get_args(kind)
        if origin is typing.Annotated:
            return self.type_schema(args[0])
        if origin in (Union, types.UnionType):
            others = [arg for arg in args if arg is not type(None)]
            inner = self.type_schema(others[0])
            if isinstance(inner.get("type"), str):
                nullable = {**inner, "type": [inner["type"], "null"]}
                if "enum" in inner:
                    nullable["enum"] = [*inner["enum"], None]
                return nullable
            return {"oneOf": [inner, {"type": "null"}]}
        if kind in _SCALARS:
            return dict(_SCALARS[kind])
        if isinstance(kind, type) and issubclass(kind, Enum):
            values = [member.value for member in kind]
            kinds = {type(value) for value in values}
            return {"type": "string" if kinds == {str} else "integer", "enum": values}
        if origin is Literal:
            return {"const": args[0]}
        if origin in (tuple, list):
            if origin is tuple and (len(args) != 2 or args[1] is not Ellipsis):  # noqa: PLR2004
                return {
                    "type": "array",
                    "items": self.type_schema(args[0]),
                    "minItems": len(args),
                    "maxItems": len(args),
                }
            return {"type": "array", "items": self.type_schema(args[0])}
        if origin is dict:
            value = self.type_schema(args[1])
            if isinstance(args[0], type) and issubclass(args[0], Enum):
                # A closed set of keys (phases): each a property, nothing else.
                return {
                    "type": "object",
                    "properties": {str(member.value): dict(value) for member in args[0]},
                    "additionalProperties": False,
                }
            return {"type": "object", "additionalProperties": value}
        if dataclasses.is_dataclass(kind):
            return self.ref(typing.cast("type", kind))
        if kind is object or kind is Any:
            return {}
        raise TypeError(f"no JSON Schema for {kind!r}")


def _item_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the schemas a list's or map's rules speak of (its items), else the schema."""
    kinds = schema.get("type")
    kind = next((k for k in kinds if k != "null"), None) if isinstance(kinds, list) else kinds
    items_key = {"array": "items", "object": "additionalProperties"}.get(str(kind))
    if items_key is not None and isinstance(schema.get(items_key), dict):
        schema[items_key] = dict(schema[items_key])
        return [schema[items_key]]
    if kind == "object" and isinstance(schema.get("properties"), dict):
        return list(schema["properties"].values())  # a map with a closed set of keys
    return [schema]


def _merge(schema: dict[str, Any], rule: dict[str, Any]) -> None:
    """Add a rule's keywords; a second rule of the same kind joins ``allOf``."""
    if any(key in schema for key in rule):
        schema.setdefault("allOf", []).append(rule)
    else:
        schema.update(rule)


_SCALARS: Final[dict[Any, dict[str, Any]]] = {
    bool: {"type": "boolean"},
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    datetime: {"type": "string", "format": "date-time"},
    type(None): {"type": "null"},
}


def schema_name(model: type) -> str:
    """Return the name a model has in the document (``SCHEMA_NAME`` or the class name)."""
    return str(getattr(model, "SCHEMA_NAME", model.__name__))


# Limits


def limits(model: type, prefix: str = "") -> dict[str, dict[str, Any]]:
    """Map each leaf field's dotted path to its schema with its rules, no references.

    Lists of models appear as ``path[].field``. This is what the web UI and the
    integration read instead of copying a bound.
    """
    result: dict[str, dict[str, Any]] = {}
    builder = SchemaBuilder()
    for spec in fields_of(model):
        path = _join(prefix, spec.name)
        kind = _optional_model(spec.type) or spec.type
        item = _model_items(kind)
        if item is not None:
            result.update(limits(item, f"{path}[]"))
            continue
        if dataclasses.is_dataclass(kind):
            result.update(limits(typing.cast("type", kind), path))
            continue
        schema = builder.field_schema(spec)
        if spec.secret:
            schema["writeOnly"] = True
        result[path] = schema
    return result


def _optional_model(kind: Any) -> type | None:  # noqa: ANN401 - a type
    """Return the model of ``Model | None``, None for anything else."""
    if typing.get_origin(kind) not in (Union, types.UnionType):
        return None
    others = [arg for arg in typing.get_args(kind) if arg is not type(None)]
    if len(others) == 1 and dataclasses.is_dataclass(others[0]):
        return typing.cast("type", others[0])
    return None


def _model_items(kind: Any) -> type | None:  # noqa: ANN401 - a type
    """Return the model of a list or tuple of models, None for anything else."""
    if not _is_sequence(kind):
        return None
    first = typing.get_args(kind)[0]
    return typing.cast("type", first) if dataclasses.is_dataclass(first) else None
