"""Experiment configuration: schema validation with defaults, and prompt identifiers."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from copy import deepcopy
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "config" / "schema.yaml"

#: Methods whose temporal modules are fine-tuned, and the fine-tuned model each sampling
#: method uses (Ours (Noise) and Ours (Latents) are two sampling modes of one model).
TRAINED_MODEL_OF_METHOD = {"lamp": "lamp", "ours_latents": "ours", "ours_noise": "ours"}
#: How the first frame is given at sampling, per video method.
FIRST_FRAME_OF_METHOD = {"lamp": "latents", "ours_latents": "latents", "ours_noise": "noise"}
METHOD_LABELS = {
    "text2video_zero": "Text2Video-Zero",
    "lamp": "LAMP",
    "ours_noise": "Ours (Noise)",
    "ours_latents": "Ours (Latents)",
    "per_frame_t2i": "Per-frame T2I",
}


class ConfigError(ValueError):
    """A configuration that does not follow config/schema.yaml."""


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _validator_with_defaults(schema: dict):
    """A Draft 2020-12 validator that also writes each property's default into the instance."""
    base = jsonschema.Draft202012Validator
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema_):
        if isinstance(instance, dict):
            for key, subschema in properties.items():
                if "default" in subschema and key not in instance:
                    instance[key] = deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema_)

    return jsonschema.validators.extend(base, {"properties": set_defaults})(schema)


def validate_config(config: dict, source: str = "config", schema: dict | None = None) -> dict:
    """Validate ``config`` against the schema, fill defaults, and return a new dict.

    All problems are reported at once; each names the offending key path and value.
    """
    config = deepcopy(config or {})
    validator = _validator_with_defaults(schema or load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for error in errors:
            where = ".".join(str(p) for p in error.absolute_path) or "<top level>"
            lines.append(f"  {where}: {error.message}")
        raise ConfigError(f"{source}: invalid configuration\n" + "\n".join(lines))
    _check_semantics(config, source)
    return canonical(config)


def canonical(value):
    """``value`` with every mapping's keys sorted: the order keys are written in a config
    file then never reaches Snakemake's params, so reordering them re-runs nothing."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def _check_semantics(config: dict, source: str) -> None:
    problems = []
    names = [m["name"] for m in config["motions"]]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"  motions: duplicate motion names {duplicates}")
    for motion in config["motions"]:
        ids = [prompt_id(p) for p in motion["prompts"]]
        if len(set(ids)) != len(ids):
            problems.append(f"  motions.{motion['name']}.prompts: duplicate prompts")
    for motion in config["motions"]:
        given = [k for k in ("url", "gdrive_id", "local_dir") if motion["source"].get(k)]
        if len(given) > 1:
            problems.append(f"  motions.{motion['name']}.source: set only one of {given}")
    if config["masks"]["strategy"] == "clip_subject":
        nameless = [m["name"] for m in config["motions"] if not m["subject"].strip()]
        if nameless:
            problems.append(
                f"  masks.strategy: clip_subject needs a subject for every motion; "
                f"motions without one: {nameless}"
            )
    t2v = config["sampling"]["text2video_zero"]
    steps = config["sampling"]["num_inference_steps"]
    if not (t2v["t0"] < t2v["t1"] < steps):
        problems.append(
            f"  sampling.text2video_zero: need t0 < t1 < num_inference_steps, got "
            f"t0={t2v['t0']}, t1={t2v['t1']}, num_inference_steps={steps}"
        )
    video = config["video"]
    if video["height"] % 8 or video["width"] % 8:
        problems.append(
            f"  video: height and width must be multiples of 8, got "
            f"{video['height']}x{video['width']}"
        )
    if config["data"]["source"] == "toy":
        problems += _toy_world_problems(config)
    if problems:
        raise ConfigError(f"{source}: invalid configuration\n" + "\n".join(problems))


def _toy_world_problems(config: dict) -> list[str]:
    """The toy world draws square frames of its own motions, and reads its prompts."""
    from .toy.world import parse_caption, toy_motion

    problems = []
    height, width = config["data"]["clip_size"]
    if height != width:
        problems.append(f"  data.clip_size: the toy world's clips are square, got {height}x{width}")
    if config["video"]["height"] != config["video"]["width"]:
        problems.append(f"  video: the toy world's frames are square, got "
                        f"{config['video']['height']}x{config['video']['width']}")
    for motion in config["motions"]:
        try:
            toy_motion(motion["name"])
        except ValueError as error:
            problems.append(f"  motions.{motion['name']}: {error}")
        for prompt in motion["prompts"]:
            try:
                parse_caption(prompt)
            except ValueError as error:
                problems.append(f"  motions.{motion['name']}.prompts: {error}")
    return problems


def load_config(path: str | Path) -> dict:
    """Read a YAML config file and validate it (see :func:`validate_config`)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    return validate_config(raw, source=str(path))


def prompt_id(prompt: str) -> str:
    """A stable file-name-safe identifier of a prompt.

    ASCII slug of the text (for humans) plus 8 hex digits of its SHA-1 (so that prompts
    differing only in punctuation or non-ASCII characters never collide).
    """
    ascii_text = unicodedata.normalize("NFKD", prompt).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")[:60].rstrip("_")
    digest = hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:8]
    return f"{slug or 'prompt'}-{digest}"


def benchmark_file_name(prompt: str) -> str:
    """LAMP's benchmark file name of a prompt: spaces read as underscores."""
    return prompt.replace(" ", "_") + ".png"


def prompt_table(config: dict) -> list[dict]:
    """One row per (motion, prompt): motion, prompt, prompt_id."""
    return [
        {"motion": motion["name"], "prompt": prompt, "prompt_id": prompt_id(prompt)}
        for motion in config["motions"]
        for prompt in motion["prompts"]
    ]
