"""``keras.models.load_model`` finds the wrappers of a saved model once ``optrun`` is imported.

A model compiled with a wrapper names it in its saved config as
``optrun>MovingAverageOptimizer``, and Keras finds such a class only once it is
registered, which its module does when it is imported. ``import optrun`` stays
free of TensorFlow (the CLI's ``--help`` must be quick), so the wrappers'
modules are imported:

* at ``import optrun``, when TensorFlow and Keras are imported already;
* else right after both are, by a one-shot import hook. Each of the two imports
  the other while it initializes, so the hook waits for the outermost of their
  imports to finish: a wrapper imported with either half initialized would fail.

A failure here never fails the user's import: it is logged, and the hook goes.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

logger = logging.getLogger("optrun")

_WATCHED = ("tensorflow", "keras")
_WRAPPERS = ("optrun.wrappers.moving_average", "optrun.wrappers.clipping")


def register_with_keras() -> None:
    """Registers the Keras wrappers now if TensorFlow and Keras are loaded, else once they are."""
    if _Hook.depth == 0 and all(name in sys.modules for name in _WATCHED):
        _register()
    elif not any(isinstance(finder, _Hook) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Hook())


def _register() -> None:
    try:
        for name in _WRAPPERS:
            importlib.import_module(name)
    except Exception as error:  # noqa: BLE001 - the user's own import must go on
        logger.debug("optrun's Keras wrappers not registered for loading saved models: %s", error)


class _Loader:  # no importlib.abc base: importing it costs every `optrun` command a few ms
    """TensorFlow's or Keras' own loader, counting the imports under way."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        _Hook.depth += 1
        try:
            self._loader.exec_module(module)
        finally:
            _Hook.depth -= 1
        if _Hook.depth == 0 and all(name in sys.modules for name in _WATCHED):
            sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Hook)]
            _register()

    def __getattr__(self, name: str) -> Any:  # get_source, resource readers, ...: the loader's own
        return getattr(self._loader, name)


class _Hook:
    """Hands out TensorFlow's and Keras' specs with their loaders wrapped in :class:`_Loader`."""

    depth = 0  # imports of the watched packages under way (they nest: each imports the other)

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname not in _WATCHED:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is None:
                continue
            if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _Loader(spec.loader)
            return spec
        return None
