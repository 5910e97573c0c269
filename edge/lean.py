"""Import-time thrift for small boards: two modules that every node would load at start
and never uses are loaded on first use instead (measured: 1.4 MB of an idle node's RSS).

- `urllib.request`: paho imports it for its proxy settings, which it reads only when
  PySocks is installed (`Client._get_proxy`); with it come http.client, email and more.
- pydantic's plugin loader imports `importlib.metadata` (with email, zipfile, csv) to look
  for plugin entry points when the first model is built. No pydantic plugin is used here,
  and `install` says so with pydantic's own switch (`PYDANTIC_DISABLE_PLUGINS=__all__`,
  unless the environment sets it); the stand-in loads the real loader if it is enabled.

Each stand-in loads the real module on first use, so behaviour is unchanged; a test
checks that an idle node has not loaded either, and that both still work when used.
`install()` must run before paho and pydantic are imported: `edge/__init__.py` calls it.

`defer(*names)` does the same for whole packages a process's libraries import for a
feature it does not use: the dashboard defers requests and aiohttp (~17 MB), which
NiceGUI's socket.io client imports for its On Air feature.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from typing import Any

_DISABLED = ("__all__", "1", "true")


class _OnFirstUse(types.ModuleType):
    """A module that is imported for real when one of its attributes is first read."""

    package = False  # a deferred package: asking for its __path__ (to import a submodule) is a use

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__") and not (attr == "__path__" and self.package):
            raise AttributeError(attr)  # the import system asks for __path__, __spec__ and such
        return getattr(_load_real(self.__name__, self), attr)


def _load_real(name: str, stand_in: types.ModuleType) -> types.ModuleType:
    if sys.modules.get(name) is stand_in:
        del sys.modules[name]
    real = importlib.import_module(name)
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, real)
    return real


def _plugin_loader() -> types.ModuleType:
    name = "pydantic.plugin._loader"
    loader = _OnFirstUse(name)

    def get_plugins() -> Any:
        if os.environ.get("PYDANTIC_DISABLE_PLUGINS") in _DISABLED:
            return ()
        return _load_real(name, loader).get_plugins()

    loader.get_plugins = get_plugins  # type: ignore[attr-defined]
    return loader


def defer(*names: str) -> None:
    """Stand-ins for these modules, unless loaded already: each is imported on first use."""
    for name in names:
        if name not in sys.modules:
            stand_in = sys.modules[name] = _OnFirstUse(name)
            stand_in.package = True


def install() -> None:
    """Put the stand-ins in place, unless the real modules are loaded already."""
    if "urllib.request" not in sys.modules:
        import urllib

        request = _OnFirstUse("urllib.request")
        sys.modules["urllib.request"] = request
        urllib.request = request  # type: ignore[attr-defined]
    if "pydantic.plugin._loader" not in sys.modules:
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
        sys.modules["pydantic.plugin._loader"] = _plugin_loader()
