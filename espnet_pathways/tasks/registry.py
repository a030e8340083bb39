"""Registration of the plugin's classes in ESPnet's module-level ``ClassChoices`` tables.

After registration, ESPnet YAML configs can say ``encoder: emformer``, ``model: pathways_transducer``
and ``preprocessor: pathways``.

``import espnet_pathways`` calls :func:`install`: if ``espnet2.tasks.asr`` is already imported the
classes are registered at once, otherwise right after that module is first imported (a one-shot
import hook). This keeps ``import espnet_pathways`` cheap for code that never touches ESPnet's
task tables (importing them costs seconds) while guaranteeing that whoever reads the tables sees
the plugin. :func:`register` does it eagerly and is idempotent.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Optional, Sequence

from espnet_pathways.asr import loader as asr_loader

__all__ = ["register", "install", "load_model", "REGISTERED"]

_TASK_MODULE = "espnet2.tasks.asr"
_LOCK = threading.Lock()
REGISTERED = {"encoder": "emformer", "model": "pathways_transducer", "preprocessor": "pathways"}
"""ClassChoices table -> name under which the plugin registers its class."""


def _add(choices, name: str, cls: type) -> None:
    """Add ``cls`` to a ClassChoices table under ``name`` (idempotent; refuses a clash)."""
    existing = choices.classes.get(name)
    if existing is not None and existing is not cls:
        raise RuntimeError(f"ESPnet's {choices.name} table already has {name!r} -> {existing!r}")
    if choices.base_type is not None and not issubclass(cls, choices.base_type):
        raise TypeError(f"{cls!r} is not a {choices.base_type.__name__}")
    choices.classes[name] = cls


def register() -> None:
    """Register the plugin's classes in ``espnet2.tasks.asr``'s tables (idempotent)."""
    with _LOCK:
        import espnet2.tasks.asr as asr

        from espnet_pathways.asr.encoder.emformer import EmformerEncoder
        from espnet_pathways.asr.transducer.model import PathwaysTransducerModel
        from espnet_pathways.tasks.preprocessor import LanguageAwarePreprocessor

        _add(asr.encoder_choices, REGISTERED["encoder"], EmformerEncoder)
        _add(asr.model_choices, REGISTERED["model"], PathwaysTransducerModel)
        _add(asr.preprocessor_choices, REGISTERED["preprocessor"], LanguageAwarePreprocessor)


def load_model(config, model_file, device: str):
    """``PathwaysASRTask.build_model_from_file`` (imports the task, and ESPnet's, on first use)."""
    from espnet_pathways.tasks.asr import PathwaysASRTask

    return PathwaysASRTask.build_model_from_file(config, model_file, device)


class _RegisteringLoader(importlib.abc.Loader):
    """Runs the real loader of ``espnet2.tasks.asr``, then :func:`register`."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        register()


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """One-shot finder that wraps the loader of ``espnet2.tasks.asr``."""

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]], target: Optional[ModuleType] = None
    ) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != _TASK_MODULE:
            return None
        _remove_hook()
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


def _remove_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegisterAfterImport)]


def install() -> None:
    """Register now if ESPnet's ASR task module is loaded, else as soon as it is imported; give
    ``Speech2Text`` the task's model loader (:data:`espnet_pathways.asr.loader.MODEL_LOADER`)."""
    asr_loader.MODEL_LOADER = load_model
    if _TASK_MODULE in sys.modules:
        register()
    elif not any(isinstance(f, _RegisterAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())
