"""Settings declared beside the code they configure: a method's block ``sampling.<name>``, a
fine-tuned model's ``finetune.<name>``, a model kind's ``models.<kind>`` are JSON-schema
fragments that their module writes (as YAML, the schema's language) and that
:func:`t2v_core.config.load_schema` puts into the schema the workflow validates against.
config/schema.yaml keeps the experiment's own keys.
"""

from __future__ import annotations

from copy import deepcopy

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
