"""What a model kind is: one folder ``<models.dir>/<name>`` that ``prepare_models`` fills, with
its settings block ``models.<name>`` in the schema and how each built-in model source makes it.

The built-in kinds are declared in :mod:`.builtin_kinds`; a plugin adds one with
:func:`t2v_core.models.prepare.register_model_kind`. Heavy libraries (torch, diffusers,
open_clip) are imported inside the functions, so that the workflow reads the registry without them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping


def _no_line(settings: dict, source: str) -> str:
    return ""


@dataclass(frozen=True)
class ModelKind:
    """A model the methods and evaluators load by ``name`` (their ``models``)."""

    name: str
    #: One line: the description of its block ``models.<name>``.
    description: str
    #: Its block's properties (t2v_core.settings.properties: each with a default and a description).
    settings: Mapping[str, Any] = field(compare=False, hash=False)
    #: ``download(work_dir, settings)``: fill the empty folder with the real model (models.source
    #: download), ``settings`` being its block ``models.<name>``.
    download: Callable[[Path, dict], None]
    #: ``create_tiny(work_dir, seed)``: fill it with random weights of the same classes (models.source tiny).
    create_tiny: Callable[[Path, int], None]
    #: ``pin(settings)``: what the download is pinned to, in words (a commit, a sha256, or NOT PINNED).
    pin: Callable[[dict], str]
    #: ``describe(settings, source)``: its line of the report's model notes ("" for none), the
    #: model source's name being the weights' origin.
    describe: Callable[[dict, str], str] = _no_line
