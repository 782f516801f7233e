"""The ``prepare_models`` stage: one folder per model kind (:class:`ModelKind`, registered
here: the built-in ones of :mod:`.builtin_kinds`, a plugin's with :func:`register_model_kind`),
from the config's model source: downloaded (``download``, the paper), created with random
weights (``tiny``, the tests), or from a source that a plugin registers
(:func:`register_model_source`; the demo's toy world copies the models it trained)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..atomic import atomic_dir
from ..plugins import Registry
from ..settings import check_properties
from .builtin_kinds import BUILTIN_KINDS
from .kinds import ModelKind

log = logging.getLogger(__name__)
#: Written into each prepared folder: the experiment that prepared it, and from which settings.
PREPARED_FOR_FILE = "prepared_for.json"

#: The models a run can prepare; a method or an evaluator names those it loads.
MODEL_KINDS = Registry("model kind")


def register_model_kind(kind: ModelKind) -> None:
    """Register ``kind``: its block ``models.<name>`` joins the schema, its folder the rules."""
    problems = check_properties(f"models.{kind.name}", kind.settings)
    if problems:
        raise ValueError(f"model kind {kind.name!r}: " + "; ".join(problems))
    MODEL_KINDS.register(kind)


def model_kind_names() -> list[str]:
    """Every registered model kind: the built-in ones, then the plugins'."""
    return MODEL_KINDS.names()


def get_model_kind(name: str) -> ModelKind:
    return MODEL_KINDS.get(name)


for _kind in BUILTIN_KINDS:
    register_model_kind(_kind)


@dataclass(frozen=True)
class ModelSource:
    """Where the models of ``models.source`` come from.

    ``prepare(kind, work_dir, models_config)`` fills the empty folder ``work_dir`` with the model
    ``kind`` (a registered :class:`ModelKind`'s name); ``settings(kind, models_config)`` is what
    of the config that depends on (the rule's params: editing it prepares that model again);
    ``input_folder(kind, models_config)`` a folder it copies, if any (the rule's input: a changed
    folder is copied again).
    """

    name: str
    prepare: Callable[[str, Path, dict], None]
    settings: Callable[[str, dict], dict]
    input_folder: Callable[[str, dict], Path | None] = lambda kind, models_config: None
    #: Lines for the report: which models these are (``describe(models_config, kinds)``, the
    #: kinds that the run uses).
    describe: Callable[[dict, list], list[str]] = lambda models_config, kinds: []
    #: Whether ``models_config`` gives the poster's models (``is_posters(models_config)``): only
    #: then are the poster's numbers drawn beside ours in the figures.
    is_posters: Callable[[dict], bool] = lambda models_config: False


MODEL_SOURCES = Registry("model source")


def register_model_source(source: ModelSource) -> None:
    MODEL_SOURCES.register(source)


def model_source_names() -> list[str]:
    return MODEL_SOURCES.names()


def get_model_source(name: str) -> ModelSource:
    return MODEL_SOURCES.get(name)


def prepare_model(kind: str, out_dir: str | Path, models_config: dict, experiment: str | None = None) -> None:
    """Create or download the model ``kind`` (a registered model kind) into ``out_dir``, from
    ``models_config`` (the model source's settings of ``kind``); note in the folder which
    experiment prepared it from which settings (see :func:`models_dir_conflicts`).

    Built in a temporary sibling folder and renamed when complete, so an interrupted
    download never leaves a folder that looks prepared.
    """
    get_model_kind(kind)  # an unknown kind is named before anything is made
    source = get_model_source(models_config["source"])
    if models_config["source"] == "download":
        log.info("%s: %s", kind, download_pin(kind, models_config))
    with atomic_dir(out_dir) as work:
        source.prepare(kind, work, models_config)
        (work / PREPARED_FOR_FILE).write_text(json.dumps({"experiment": experiment, "settings": models_config},
                                                         indent=2, sort_keys=True))


def models_dir_conflicts(models_dir: str | Path, experiment: str, settings: dict[str, dict]) -> list[str]:
    """The prepared folders in ``models_dir`` that another experiment made from other settings
    than ``settings`` (kind -> the model source's settings): preparing them again for this
    experiment would replace that experiment's models and invalidate its results. Folders of
    this experiment (its settings were edited) and of equal settings (shared downloads) are fine."""
    conflicts = []
    for kind, wanted in settings.items():
        record = Path(models_dir, kind, PREPARED_FOR_FILE)
        if not record.is_file():
            continue
        prepared = json.loads(record.read_text())
        if prepared["experiment"] != experiment and prepared["settings"] != json.loads(json.dumps(wanted)):
            conflicts.append(f"{record.parent} was prepared by experiment {prepared['experiment']!r} from "
                             f"{prepared['settings']}, this experiment {experiment!r} needs {wanted}")
    return conflicts


def _download(kind: str, work: Path, models_config: dict) -> None:
    get_model_kind(kind).download(work, models_config[kind])


def _create_tiny(kind: str, work: Path, models_config: dict) -> None:
    get_model_kind(kind).create_tiny(work, models_config["seed"])


def _describe_kinds(models_config: dict, kinds) -> list[str]:
    """The report's line of each model in ``kinds`` that has one, in the registry's order."""
    lines = [get_model_kind(name).describe(models_config[name], models_config["source"])
             for name in model_kind_names() if name in kinds]
    return [line for line in lines if line]


def download_pin(kind: str, models_config: dict) -> str:
    """What the download of ``kind`` is pinned to, in words: the commit of a Hugging Face
    repository, or the sha256 a file is checked against; or, said plainly, that it is not."""
    return get_model_kind(kind).pin(models_config[kind])


def _describe_pins(models_config: dict, kinds) -> list[str]:
    known = model_kind_names()
    return [f"Download of {kind}: {download_pin(kind, models_config)}" for kind in kinds if kind in known]


#: The poster's base model (the design card: Stable Diffusion v1.4).
POSTER_BASE_MODEL = "CompVis/stable-diffusion-v1-4"

register_model_source(ModelSource(
    "download", _download, settings=lambda kind, models_config: {"source": "download", kind: models_config[kind]},
    describe=lambda models_config, kinds: _describe_kinds(models_config, kinds) + _describe_pins(models_config, kinds),
    is_posters=lambda models_config: models_config["base"]["repo_id"] == POSTER_BASE_MODEL,
))
register_model_source(ModelSource(
    "tiny", _create_tiny, settings=lambda kind, models_config: {"source": "tiny", "seed": models_config["seed"]},
    describe=lambda models_config, kinds: _describe_kinds(models_config, kinds) + [
        "With tiny random models the numbers only show that the pipeline runs."],
))
