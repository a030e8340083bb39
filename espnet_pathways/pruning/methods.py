"""The pruning methods, one record of traits each; torch-free, so the recipe can import it.

imp/lth: monolingual magnitude pruning (LTH rewinds to θ0 after each event); lap: one shared mask
on mixed-language data; adaptive_*: soft pruning with re-ranking every ``adapt_interval`` steps;
pathways: fixed per-language masks trained with monolingual batches; dynamic_pathways: per-language
masks re-ranked inside each language's mask plus free zone (language z after every ``adapt_interval``
steps on z's batches).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Literal, Optional

__all__ = ["PruningMethod", "METHODS", "PruningConfigError", "get_method", "find_method", "method_batches"]


class PruningConfigError(ValueError):
    """An inconsistent or misspelled ``pruning_conf``."""


@dataclass(frozen=True)
class PruningMethod:
    """A pruning method's traits: what the config checks, the engine and the recipe branch on.

    ``candidates``, the weights a re-ranking chooses from: ``mask``, the current mask (prune further
    from m ⊙ θ); ``all``, every weight (regrown ones can re-enter); ``region``, the language's mask
    and its free zone.
    """

    name: str
    prunes: bool = True  # pruning events raise the sparsity (fixed ASR Pathways keeps its masks)
    adaptive: bool = False  # soft masks re-ranked every adapt_interval steps, applied hard from hard_from
    rewinds: bool = False  # lottery-ticket rewinding to θ0 after each pruning event
    batches: Literal["monolingual", "mixed"] = "monolingual"  # mixed: utt2category ignored
    needs_init_masks: bool = False  # starts from init_masks (the languages' mask files)
    mask_keys: Literal["one", "shared", "all"] = "one"  # one language's mask / the shared "*" / every language's
    adapts_per_language: bool = False  # language z re-ranked after every adapt_interval steps on z's batches
    candidates: Literal["mask", "all", "region"] = "mask"  # see above

    @property
    def per_language(self) -> bool:
        """Masks per language (LAP prunes one shared mask)."""
        return self.mask_keys != "shared"


METHODS: Dict[str, PruningMethod] = {m.name: m for m in (
    PruningMethod("imp"),
    PruningMethod("lth", rewinds=True),
    PruningMethod("lap", batches="mixed", mask_keys="shared"),
    PruningMethod("adaptive_imp", adaptive=True, candidates="all"),
    PruningMethod("adaptive_lth", adaptive=True, rewinds=True, candidates="all"),
    PruningMethod("pathways", prunes=False, needs_init_masks=True, mask_keys="all"),
    PruningMethod("dynamic_pathways", adaptive=True, needs_init_masks=True, mask_keys="all",
                  adapts_per_language=True, candidates="region"),
)}
"""Every method by name (the order of the documentation)."""


def find_method(name: Any) -> Optional[PruningMethod]:
    """The method called ``name``; None for none or an unknown one (a config not validated)."""
    return METHODS.get(name) if isinstance(name, str) else None


def get_method(name: Any) -> PruningMethod:
    """The method called ``name``; :class:`PruningConfigError` for an unknown one."""
    method = find_method(name)
    if method is None:
        raise PruningConfigError(f"method: unknown {name!r} (choose from {', '.join(METHODS)})")
    return method


def method_batches(method: str) -> str:
    """The training batches ``method`` wants: ``"mixed"`` (LAP is language-agnostic: ``utt2category``
    is ignored, batches mix languages) or ``"monolingual"`` (every other method: category batches,
    each gradient-accumulation group of one language; see ``espnet_pathways.tasks.language_runs``)."""
    return get_method(method).batches
