"""Settings declared beside the code they configure: a method's block ``sampling.<name>``, a
fine-tuned model's ``finetune.<name>``, a model kind's ``models.<kind>`` are JSON-schema
fragments that their module writes (as YAML, the schema's language) and that
:func:`t2v_core.config.load_schema` puts into the schema the workflow validates against.
config/schema.yaml keeps the experiment's own keys.
"""

from __future__ import annotations

import re
from copy import deepcopy
from dataclasses import field, fields, make_dataclass

import yaml


def properties(text: str) -> dict:
    """A block's properties written as YAML (each with a type, a default and a description)."""
    parsed = yaml.safe_load(text)
    if not isinstance(parsed, dict):
        raise ValueError(f"settings must be a YAML mapping of properties, got {type(parsed).__name__}")
    return parsed


def changed(base: dict, **overrides) -> dict:
    """``base``'s properties with some replaced (a mapping: merged into the property; None: dropped)."""
    out = deepcopy(base)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = {**out.get(key, {}), **value}
    return out


def block(description: str, props: dict) -> dict:
    """A settings block of the schema: an object of ``props`` that rejects unknown keys and
    defaults to all its properties' defaults."""
    return {"type": "object", "additionalProperties": False, "default": {}, "description": description,
            "properties": deepcopy(props)}


def check_properties(owner: str, props: dict) -> list[str]:
    """Problems of a declared block: every property needs a default and a description (the
    schema's rule, so that a config may leave any key out and every key is documented)."""
    problems = []
    for key, spec in props.items():
        for needed in ("default", "description"):
            if needed not in spec and not (needed == "description" and "$ref" in spec):
                problems.append(f"{owner}.{key}: no {needed}")
    return problems


#: The shared definitions the fragments may refer to (``$ref: "#/definitions/<name>"``).
GUIDANCE_SCALE = "#/definitions/guidance_scale"
BETA_SCHEDULE = "#/definitions/beta_schedule"


#: The Python type of a property's JSON type (anything else, e.g. a $ref or a union: object).
_PYTHON_TYPES = {"number": float, "integer": int, "boolean": bool, "string": str, "array": list, "object": dict}
_classes: dict = {}


def _arguments(self, *leave_out: str) -> dict:
    """The settings as keyword arguments (field name -> value), but those in ``leave_out``."""
    return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in leave_out}


def settings_class(owner: str, props: dict) -> type:
    """A frozen dataclass of a settings block: one field per property, named as the block's
    key (the pipelines' argument names), defaulting to its default; ``arguments()`` gives
    them as keyword arguments. One class per owner and properties."""
    key = (owner, yaml.safe_dump(props, sort_keys=True))
    if key not in _classes:
        spec_fields = []
        for name, spec in props.items():
            default = spec.get("default")
            value = field(default_factory=lambda d=default: deepcopy(d)) if isinstance(default, (list, dict)) \
                else field(default=default)
            spec_fields.append((name, _PYTHON_TYPES.get(spec.get("type"), object), value))
        class_name = "".join(part.title() for part in re.split(r"[._]", owner)) + "Settings"
        _classes[key] = make_dataclass(class_name, spec_fields, frozen=True, namespace={"arguments": _arguments})
    return _classes[key]


def typed(owner: str, props: dict, block: dict):
    """``block`` (a validated settings block, ``owner`` its key path) as its typed settings."""
    unknown = set(block) - set(props)
    if unknown:
        raise ValueError(f"{owner}: unknown settings {sorted(unknown)} (declared: {sorted(props)})")
    return settings_class(owner, props)(**block)
