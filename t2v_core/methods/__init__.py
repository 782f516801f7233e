"""The method registry: every row of the comparison table, declared once (one module per
method) and read by the rules, the sampling job, the tables and the report.

Every module of this package that has a ``DECLARED_METHODS`` tuple is found and its methods
registered (in :data:`METHOD_REGISTRY`), the study's in the order of its table
(:data:`TABLE_ORDER`), any other module after them in name order; plugins register theirs with
:func:`register_method`. Adding a sampling-only method is therefore a module (here or in a
plugin) with a :class:`Method` subclass (``load``, ``sample``), its settings
(:attr:`Method.settings`, the schema's block ``sampling.<name>``) and ``DECLARED_METHODS = (its
instance,)``, and its tests: the schema's ``methods`` and ``sampling`` come from the registry.
"""

from __future__ import annotations

import importlib
import pkgutil

from ..plugins import Registry, missing_registration
from .base import Method, Training

METHOD_REGISTRY = Registry("method")


def register_method(method: Method) -> None:
    """Register ``method``; a fine-tuned model it shares with a registered method must be the same one."""
    if method.name in GROUPS:
        raise ValueError(f"method {method.name!r}: the name stands for a group of methods in the config")
    training = method.training
    for other in METHOD_REGISTRY.registered():
        if training is not None and other.training is not None and other.training.name == training.name \
                and other.training != training:
            raise ValueError(f"method {method.name!r}: another fine-tuned model is already called "
                             f"{training.name!r} (by {other.name!r})")
    METHOD_REGISTRY.register(method)


#: The modules of the study's methods, in the order of its table's rows (the default ``methods``).
TABLE_ORDER = ("text2video_zero", "lamp", "ours", "per_frame_t2i", "animatediff")
#: Words of ``methods`` that stand for several: every registered method that is not a variant,
#: and every variant (config/variants.yaml: ``methods: [study, variants]``).
GROUPS = ("study", "variants")

_modules = sorted((m.name for m in pkgutil.iter_modules(__path__)),
                  key=lambda name: (TABLE_ORDER.index(name) if name in TABLE_ORDER else len(TABLE_ORDER), name))
for _module in _modules:
    for _method in getattr(importlib.import_module(f"{__name__}.{_module}"), "DECLARED_METHODS", ()):
        register_method(_method)


def method_names() -> list[str]:
    """Every registered method: the built-in ones by module name, then the plugins'."""
    return METHOD_REGISTRY.names()


def default_methods() -> list[str]:
    """The default ``methods``: every registered method that is not a variant, in table order."""
    return [name for name in method_names() if not get_method(name).variant]


def expand_groups(names: list[str]) -> list[str]:
    """``methods`` with its group words replaced by their methods (each method once, in order)."""
    groups = {"study": default_methods(),
              "variants": [name for name in method_names() if get_method(name).variant]}
    expanded = [member for name in names for member in groups.get(name, [name])]
    return list(dict.fromkeys(expanded))


def get_method(name: str) -> Method:
    return METHOD_REGISTRY.get(name)


def trainings(methods=None) -> dict[str, Training]:
    """The fine-tuned models of ``methods`` (default: all registered), by name."""
    chosen = [get_method(name) for name in (method_names() if methods is None else methods)]
    return {m.training.name: m.training for m in chosen if m.training is not None}


def get_training(name: str) -> Training:
    every = trainings()
    if name not in every:
        raise ValueError(missing_registration("fine-tuned model", name, every))
    return every[name]
