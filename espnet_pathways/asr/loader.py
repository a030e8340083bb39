"""The loader with which :class:`~espnet_pathways.asr.inference.Speech2Text` builds a trained model.

Building one needs the ESPnet task, which sits above this package: ``import espnet_pathways`` sets
:data:`MODEL_LOADER` to the task's (:func:`espnet_pathways.tasks.registry.load_model`).
"""

from typing import Any, Callable, Optional, Tuple

MODEL_LOADER: Optional[Callable[[Any, Any, str], Tuple[Any, Any]]] = None
"""(config.yaml, model file or None, device) -> (model, training args), as ``build_model_from_file``."""
