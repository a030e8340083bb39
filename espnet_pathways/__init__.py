"""espnet-pathways: ASR Pathways and Dynamic ASR Pathways as an ESPnet plugin.

Importing the package registers its classes in ESPnet's ``ClassChoices`` tables
(``encoder: emformer``, ``model: pathways_transducer``, ``preprocessor: pathways``); see
:mod:`espnet_pathways.registry`.
"""

from espnet_pathways import registry as _registry

__version__ = "0.1.0"

_registry.install()
