"""The method registry: every row of the comparison table, declared once (one module per
method) and read by the rules, the sampling job, the tables and the report.

Every module of this package that has a ``METHODS`` tuple is found and its methods registered,
module by module in name order; plugins register theirs with :func:`register_method`. Adding a
sampling-only method is therefore: a module here with a :class:`Method` subclass (``load``,
``sample``) and ``METHODS = (its instance,)``, its settings block ``sampling.<name>`` and its
name in ``methods`` (enum and default) in config/schema.yaml, and its tests.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..plugins import Registry, missing_registration
from .base import Method, Training

METHODS = Registry("method")


def register_method(method: Method) -> None:
    """Register ``method``; a fine-tuned model it shares with a registered method must be the same one."""
    training = method.training
    for other in METHODS.registered():
        if training is not None and other.training is not None and other.training.name == training.name \
                and other.training != training:
            raise ValueError(f"method {method.name!r}: another fine-tuned model is already called "
                             f"{training.name!r} (by {other.name!r})")
    METHODS.register(method)


for _module in pkgutil.iter_modules(__path__):
    for _method in getattr(importlib.import_module(f"{__name__}.{_module.name}"), "METHODS", ()):
        register_method(_method)


def method_names() -> list[str]:
    """Every registered method: the built-in ones by module name, then the plugins'."""
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
