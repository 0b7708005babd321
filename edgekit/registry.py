"""One small generic registry, used for every extension point (recipes, exporters, backends,
tasks, detection formats, input kinds, sources, sinks, datasets, data generators). The CLI's
choices, `edgekit list` and the parametrised tests all read these; nothing keeps a second list.

A registry loads its own modules on first use: every module of the package it is given (scanned
once), or the modules it is named. Each module adds its entries when imported, so adding an entry
is adding one file, and no module keeps a hand-written list of the others.

Modules outside edgekit add entries the same way: `EDGEKIT_PLUGINS=pkg.formats,pkg.backends` names
modules that every registry imports (once per process) after its own, so a format, backend or
source of one's own is one module, in this process and in the child processes `bench` starts."""

from __future__ import annotations

import difflib
import importlib
import os
import pkgutil
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from edgekit.errors import UnknownNameError

T = TypeVar("T")

PLUGINS_VARIABLE = "EDGEKIT_PLUGINS"
_plugins_loaded: list[str] = []


def load_plugins() -> None:
    """Import the modules `EDGEKIT_PLUGINS` names (comma-separated), once per process; one that
    cannot be imported is one sentence naming it."""
    if _plugins_loaded:
        return
    _plugins_loaded.append("done")
    for name in filter(None, (n.strip() for n in os.environ.get(PLUGINS_VARIABLE, "").split(","))):
        try:
            importlib.import_module(name)
        except ImportError as e:
            from edgekit.errors import ConfigError

            raise ConfigError(f"{PLUGINS_VARIABLE} names {name!r}, which cannot be imported: {e}") from None


def _caller_module() -> str:
    """The module that called `add` (directly or through `register`), outside this one."""
    import sys

    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame.f_globals.get("__name__", "") if frame is not None else ""


class Registry(Generic[T]):
    """Maps names to entries, each keyed by its own `name` attribute; `get` fails with a
    "did you mean" hint. `package` (a dotted package name) is scanned once for modules to import,
    `modules` names further ones; both are imported on the first read, not at definition."""

    def __init__(self, kind: str, *, package: str | None = None, modules: Sequence[str] = ()) -> None:
        self.kind = kind
        self.package = package
        self.modules = tuple(modules)
        self._entries: dict[str, T] = {}
        self._origin: dict[str, str] = {}  # entry name -> the module that registered it
        self._loaded = not (package or modules)
        self._lock = threading.RLock()

    # -- filling -------------------------------------------------------------------------------

    def add(self, entry: T, name: str | None = None) -> T:
        """Register `entry` under its own `name` (or `name`, for entries that have none, such as
        plain functions)."""
        own = getattr(entry, "name", None)
        if name is None:
            if not isinstance(own, str) or not own:
                raise TypeError(f"a {self.kind} entry needs a name: {entry!r}")
            name = own
        elif not isinstance(name, str):
            raise TypeError(f"a {self.kind} name must be a string, not {name!r}: add(entry, name)")
        elif isinstance(own, str) and own and own != name:
            raise ValueError(f"{self.kind} {own!r} registered under another name, {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        self._origin[name] = _caller_module()
        return entry

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator form of `add`; `name` only for entries without a `name` attribute."""
        return lambda entry: self.add(entry, name)

    def load(self) -> None:
        """Import the registry's modules (once); each registers its entries as it is imported."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            self._loaded = True  # set first: a module being imported may read the registry
            modules = self.module_names()
            for module in modules:
                importlib.import_module(module)
            load_plugins()
            # the order of the modules, whichever `get` imported first: choices and tables read it
            rank = {m: i for i, m in enumerate(modules)}
            order = sorted(self._entries, key=lambda n: rank.get(self._origin.get(n, ""), -1))
            self._entries = {n: self._entries[n] for n in order}

    def module_names(self) -> list[str]:
        """The modules this registry loads: the package's own modules (not its sub-packages, nor
        modules whose names start with `_`), then the named ones."""
        names: list[str] = []
        if self.package:
            pkg = importlib.import_module(self.package)
            names += [
                f"{self.package}.{info.name}"
                for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name)
                if not info.ispkg and not info.name.startswith("_")
            ]
        return names + list(self.modules)

    # -- reading -------------------------------------------------------------------------------

    def get(self, name: str) -> T:
        if not self._loaded:
            entry = self._entries.get(name) or self._from_own_module(name)
            if entry is not None:
                return entry
        self.load()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self._unknown(name)) from None

    def _from_own_module(self, name: str) -> T | None:
        """Where an entry lives in the module its name says (`detect` in `detect.py`,
        `classify-image` in `classify.py`), import that module alone: running an image model need
        not import every task (audio's included) nor scan the package."""
        if not self.package or not isinstance(name, str):
            return None
        import importlib.util

        with self._lock:
            for stem in dict.fromkeys((name.replace("-", "_"), name.split("-")[0])):
                if not stem.isidentifier() or stem.startswith("_"):
                    continue
                module = f"{self.package}.{stem}"
                if importlib.util.find_spec(module) is not None:
                    importlib.import_module(module)
                    if name in self._entries:
                        return self._entries[name]
        return None

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), self._entries, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(self.names()) or 'none'}"
        return f"unknown {self.kind} {name!r}: {hint}"

    def first(self, matches: Callable[[T], bool]) -> T | None:
        """The first entry, in the registry's order, that `matches` (None: none does): the one
        place "which entry takes this file, spec or target" is asked."""
        return next((entry for entry in self.values() if matches(entry)), None)

    def names(self) -> list[str]:
        self.load()
        return list(self._entries)

    def values(self) -> list[T]:
        self.load()
        return list(self._entries.values())

    def items(self) -> Iterator[tuple[str, T]]:
        self.load()
        return iter(list(self._entries.items()))

    def __iter__(self) -> Iterator[T]:
        return iter(self.values())

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __len__(self) -> int:
        self.load()
        return len(self._entries)
