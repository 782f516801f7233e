"""The method registry: every row of the comparison table, declared once (one module per
method) and read by the rules, the sampling job, the tables and the report.

Adding a sampling-only method: a module here with a :class:`Method` subclass (``load``,
``sample``) and its instance registered below (or by a plugin, :func:`register_method`), its
settings block ``sampling.<name>`` and its name in ``methods``' enum in config/schema.yaml.
"""

from __future__ import annotations

from ..plugins import Registry, missing_registration
from .base import Method, Training
from .lamp import LAMP
from .ours import OURS_LATENTS, OURS_NOISE
from .per_frame_t2i import PER_FRAME_T2I
from .text2video_zero import TEXT2VIDEO_ZERO

METHODS = Registry("method")


def register_method(method: Method) -> None:
    """Register ``method``; a fine-tuned model it shares with a registered method must be the same one."""
    training = method.training
    for other in METHODS.items():
        if training is not None and other.training is not None and other.training.name == training.name \
                and other.training != training:
            raise ValueError(f"method {method.name!r}: another fine-tuned model is already called "
                             f"{training.name!r} (by {other.name!r})")
    METHODS.register(method)


for _method in (TEXT2VIDEO_ZERO, LAMP, OURS_NOISE, OURS_LATENTS, PER_FRAME_T2I):
    register_method(_method)


def method_names() -> list[str]:
    """Every registered method, in registration order (the built-in ones first)."""
    return METHODS.names()


def get_method(name: str) -> Method:
    return METHODS.get(name)


def trainings(methods=None) -> dict[str, Training]:
    """The fine-tuned models of ``methods`` (default: all registered), by name."""
    chosen = [get_method(name) for name in (method_names() if methods is None else methods)]
    return {m.training.name: m.training for m in chosen if m.training is not None}


def get_training(name: str) -> Training:
    every = trainings()
    if name not in every:
        raise ValueError(missing_registration("fine-tuned model", name, every))
    return every[name]
