"""Experiment configuration: schema validation with defaults, the checks beyond the schema, and
the extension point for plugins' checks."""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path
from typing import Callable

import jsonschema
import yaml

from .plugins import load_plugins

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "config" / "schema.yaml"


class ConfigError(ValueError):
    """A configuration that does not follow config/schema.yaml."""


#: Checks beyond the schema that plugins add (:func:`register_config_check`): each takes the
#: validated config and returns its problems, one line each ("  key.path: what is wrong").
_CONFIG_CHECKS: list[Callable[[dict], list[str]]] = []


def register_config_check(check: Callable[[dict], list[str]]) -> None:
    _CONFIG_CHECKS.append(check)


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    """The schema the workflow validates against: ``path``'s experiment-level keys with the
    registries' declarations put in (:func:`assemble_schema`)."""
    with open(path, encoding="utf-8") as handle:
        return assemble_schema(yaml.safe_load(handle))


def assemble_schema(schema: dict) -> dict:
    """``schema`` with what the registries (plugins included) declare: the names ``methods`` may
    list and its default, each method's block ``sampling.<name>``, each fine-tuned model's
    ``finetune.<name>``, each model kind's ``models.<kind>``, the metric switches of
    ``evaluation.metrics``."""
    from .methods import GROUPS, default_methods, get_method, method_names, trainings
    from .metrics.registry import metric_switches
    from .models.prepare import get_model_kind, model_kind_names
    from .settings import block

    schema = deepcopy(schema)
    top = schema["properties"]
    top["methods"]["items"]["enum"] = [*method_names(), *GROUPS]
    top["methods"]["default"] = default_methods()
    for name in method_names():
        method = get_method(name)
        top["sampling"]["properties"][name] = block(method.description, method.settings)
    for name, training in trainings().items():
        top["finetune"]["properties"][name] = block(training.description, training.settings)
    models = top["models"]["properties"]
    for name in model_kind_names():
        if name in models:  # a kind called "dir" would replace the key models.dir
            raise ValueError(f"model kind {name!r}: models.{name} is already a key of the schema")
        kind = get_model_kind(name)
        models[name] = block(kind.description, kind.settings)
    top["evaluation"]["properties"]["metrics"]["items"]["enum"] = metric_switches()
    return schema


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
    if isinstance(config.get("methods"), list):
        from .methods import expand_groups

        config["methods"] = expand_groups(config["methods"])
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
        for prompt in sorted({p for p in motion["prompts"] if motion["prompts"].count(p) > 1}):
            problems.append(f"  motions.{motion['name']}.prompts: {prompt!r} is given "
                            f"{motion['prompts'].count(prompt)} times")
    problems += _clip_source_problems(config)
    if config["masks"]["strategy"] == "clip_subject":
        nameless = [m["name"] for m in config["motions"] if not m["subject"].strip()]
        if nameless:
            problems.append(
                f"  masks.strategy: clip_subject needs a subject for every motion; "
                f"motions without one: {nameless}"
            )
    video = config["video"]
    if video["height"] % 8 or video["width"] % 8:
        problems.append(
            f"  video: height and width must be multiples of 8, got "
            f"{video['height']}x{video['width']}"
        )
    problems += _registry_problems(config)
    from .methods import get_method, method_names

    for name in [m for m in config["methods"] if m in method_names()]:
        problems += get_method(name).check_config(config)  # each method checks its own settings
    load_plugins()
    for check in _CONFIG_CHECKS:
        problems += check(config)
    if problems:
        raise ConfigError(f"{source}: invalid configuration\n" + "\n".join(problems))


def _clip_source_problems(config: dict) -> list[str]:
    """Where the training clips come from must be unambiguous and exist: one source per motion,
    none with a generated data source (which would ignore it), local folders that are there."""
    from .data.sources import data_source_names, generated_source

    problems = []
    source = config["data"]["source"]
    generated = source in data_source_names() and generated_source(source) is not None
    if generated and config["data"]["local_dir"]:
        problems.append(f"  data.local_dir: {config['data']['local_dir']!r} would be ignored: data.source "
                        f"{config['data']['source']!r} generates its clips (use data.source: lamp for your own)")
    elif config["data"]["local_dir"] and not Path(config["data"]["local_dir"]).is_dir():
        problems.append(f"  data.local_dir: folder {config['data']['local_dir']!r} does not exist")
    for motion in config["motions"]:
        where = f"  motions.{motion['name']}.source"
        given = [k for k in ("url", "gdrive_id", "local_dir") if motion["source"].get(k)]
        if len(given) > 1:
            problems.append(f"{where}: set only one of {given}")
        elif given and generated:
            problems.append(f"{where}: {given[0]} {motion['source'][given[0]]!r} would be ignored: data.source "
                            f"{config['data']['source']!r} generates every motion's clips (use data.source: lamp "
                            f"for your own)")
        elif given == ["local_dir"] and not Path(motion["source"]["local_dir"]).is_dir():
            problems.append(f"{where}.local_dir: folder {motion['source']['local_dir']!r} does not exist")
    return problems


def _registry_problems(config: dict) -> list[str]:
    """Names the schema allows that nothing implements (the schema's lists and the registries
    are kept equal by a test; this names the culprit if they drift apart)."""
    from .data.sources import data_source_names
    from .methods import method_names
    from .models.prepare import model_source_names

    problems = []
    for key, chosen, known in (("methods", config["methods"], method_names()),
                               ("data.source", [config["data"]["source"]], data_source_names()),
                               ("models.source", [config["models"]["source"]], model_source_names())):
        missing = [name for name in chosen if name not in known]
        if missing:
            problems.append(f"  {key}: {missing} allowed by the schema but not registered "
                            f"(registered: {', '.join(known)})")
    return problems


def main(argv=None) -> None:
    """``python -m t2v_core.config schema``: print the assembled schema (YAML)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m t2v_core.config", description=main.__doc__)
    parser.add_argument("what", choices=["schema"])
    parser.parse_args(argv)
    yaml.safe_dump(load_schema(), sys.stdout, sort_keys=False, width=100, allow_unicode=True)


def load_config(path: str | Path) -> dict:
    """Read a YAML config file and validate it (see :func:`validate_config`)."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    return validate_config(raw, source=str(path))


if __name__ == "__main__":
    main()
