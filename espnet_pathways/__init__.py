"""espnet-pathways: ASR Pathways and Dynamic ASR Pathways as an ESPnet plugin.

Importing the package registers its classes in ESPnet's ``ClassChoices`` tables
(``encoder: emformer``, ``model: pathways_transducer``, ``preprocessor: pathways``) and the task's
model loader of ``Speech2Text``; see :mod:`espnet_pathways.tasks.registry`.
"""

from espnet_pathways.tasks import registry as _registry

__version__ = "0.1.0"

_registry.install()
