"""Extension points of the core, filled by plugins: installed packages that declare an entry
point in the group ``t2v_core.plugins`` (the toy world of the demo is one:
``t2v_core.toy.plugin``). Loading a plugin's module registers what it brings (methods, data
and model sources, metrics, config checks) in the registries of the core, which never import
a plugin by name.
"""

from __future__ import annotations

from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "t2v_core.plugins"
_loaded: list[str] = []
_started = False


class PluginError(RuntimeError):
    pass


def load_plugins() -> list[str]:
    """Import every plugin once (in entry-point name order); the names of those loaded."""
    global _started
    if not _started:
        _started = True  # before loading: a plugin that reads a registry must not load itself again
        for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name):
            try:
                point.load()
            except Exception as error:
                raise PluginError(f"plugin {point.name!r} ({point.value}) failed to load: {error}") from error
            _loaded.append(point.name)
    return list(_loaded)


def missing_registration(kind: str, name: str, known) -> str:
    """The message for a name that no registry has: what is known, and where plugins come from."""
    return (f"unknown {kind} {name!r}; registered: {', '.join(known) or 'none'} (plugins are the "
            f"{ENTRY_POINT_GROUP!r} entry points of installed packages: `pip install -e .` registers this "
            f"project's own)")


class Registry:
    """The named things of one kind (each has a ``name``) that the core and plugins register, in
    registration order; every lookup loads the plugins first."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict = {}

    def register(self, item) -> None:
        if item.name in self._items:
            raise ValueError(f"{self.kind} {item.name!r} is registered twice")
        self._items[item.name] = item

    def registered(self) -> list:
        """What is registered so far, without loading the plugins (for checks while registering)."""
        return list(self._items.values())

    def names(self) -> list[str]:
        load_plugins()
        return list(self._items)

    def items(self) -> list:
        load_plugins()
        return list(self._items.values())

    def get(self, name: str):
        load_plugins()
        if name not in self._items:
            raise ValueError(missing_registration(self.kind, name, self._items))
        return self._items[name]
