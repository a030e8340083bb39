"""The ``pruning_conf`` block of an ESPnet training config, parsed and validated.

Example (YAML, next to the rest of an ESPnet config)::

    pruning_conf:
        method: adaptive_lth          # imp | lth | lap | adaptive_imp | adaptive_lth | pathways | dynamic_pathways
        target_sparsity: 0.7
        schedule: cubic               # cubic | geometric | constant
        initial_sparsity: 0.1
        num_events: 5                 # cubic: events k = 0..N
        prune_interval: 200           # T, optimizer steps between pruning events
        adapt_interval: 50            # n < T, steps between re-rankings (adaptive methods; dynamic_pathways: per language)
        ranking: global               # global | layerwise
        include: [encoder, decoder, joint]
        exclude: []
        rewind_to: exp/dense/valid.loss.ave.pth   # LTH; default: the --init_param model
        languages: [fr]               # mask keys: one language (monolingual) / "*" (LAP) / all (pathways)
        init_masks: [exp/lth_fr/masks.pwm, exp/lth_nl/masks.pwm]   # pathways / dynamic_pathways
        reset_optimizer_state: true   # zero the optimizer state of weights pruned hard
        rezero_on_adapt: true         # adaptive: a re-ranking also zeroes the weights it drops (false:
                                      # only pruning events do, so pruned weights regrow across re-rankings)
        allow_short_schedule: false   # true: accept a run whose optimizer steps end before the schedule
                                      # (its masks stay short of target_sparsity)
        new_languages: [es]           # pathways / dynamic_pathways: languages added to a trained model
                                      # (espnet_pathways.tasks.extend); the masks cover the whole --lang_list,
                                      # ``languages`` then names the languages whose batches train
        freeze_existing: false        # with new_languages: true keeps every weight the other languages
                                      # use, and every parameter their decoding reads, exactly as loaded
                                      # (their masks fixed, their batches refused in training); false:
                                      # they keep adapting in their own regions (Dynamic ASR Pathways
                                      # over all languages)
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Mapping, Optional, Sequence

from espnet_pathways.masks import SCHEDULES, SHARED, SparsitySchedule, check_sparsity
from espnet_pathways.pruning.methods import METHODS, PruningConfigError, PruningMethod, get_method, method_batches

__all__ = ["PruningConfig", "METHODS", "PruningConfigError", "method_batches"]


@dataclass(frozen=True)
class PruningConfig:
    """Validated pruning settings (see the module docstring for the YAML form)."""

    method: str
    target_sparsity: float = 0.0
    schedule: str = "cubic"
    initial_sparsity: float = 0.0
    num_events: int = 1
    rate: float = 0.2
    start_step: int = 0
    prune_interval: int = 1
    adapt_interval: Optional[int] = None
    freeze_step: Optional[int] = None
    ranking: str = "global"
    include: Optional[List[str]] = None
    exclude: Optional[List[str]] = None
    rewind_to: Optional[str] = None
    languages: Optional[List[str]] = None
    init_masks: List[str] = field(default_factory=list)
    reset_optimizer_state: bool = True
    rezero_on_adapt: bool = True
    allow_short_schedule: bool = False
    new_languages: Optional[List[str]] = None
    freeze_existing: bool = False

    @classmethod
    def from_dict(cls, conf: Mapping[str, Any], key: str = "pruning_conf") -> "PruningConfig":
        """Build from a YAML mapping; unknown keys and bad values raise naming the key."""
        if not isinstance(conf, Mapping):
            raise PruningConfigError(f"{key} must be a mapping, got {type(conf).__name__}")
        known = {f.name for f in fields(cls)}
        for name in conf:
            if name not in known:
                close = difflib.get_close_matches(str(name), sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise PruningConfigError(f"{key}: unknown key {name!r}{hint}")
        if "method" not in conf:
            raise PruningConfigError(f"{key}: 'method' is required (one of {', '.join(METHODS)})")
        values: Dict[str, Any] = dict(conf)
        for name in ("include", "exclude", "languages", "init_masks", "new_languages"):
            if isinstance(values.get(name), str):
                values[name] = [values[name]]
        try:
            config = cls(**values)
        except PruningConfigError as e:
            raise PruningConfigError(f"{key}: {e}") from None
        return config

    def __post_init__(self) -> None:
        spec = get_method(self.method)
        for name in ("target_sparsity", "initial_sparsity"):
            try:
                check_sparsity(getattr(self, name), name)
            except ValueError as e:
                raise PruningConfigError(str(e)) from None
        if self.schedule not in SCHEDULES:
            raise PruningConfigError(f"schedule: unknown {self.schedule!r} (choose from {', '.join(SCHEDULES)})")
        if self.ranking not in ("global", "layerwise"):
            raise PruningConfigError(f"ranking: must be 'global' or 'layerwise', got {self.ranking!r}")
        if self.prune_interval <= 0:
            raise PruningConfigError(f"prune_interval must be > 0, got {self.prune_interval}")
        if self.adaptive:
            if self.adapt_interval is None:
                raise PruningConfigError(f"method {self.method} needs adapt_interval (n < prune_interval)")
            if not 0 < self.adapt_interval < self.prune_interval:
                raise PruningConfigError(
                    f"adapt_interval (n={self.adapt_interval}) must satisfy 0 < n < prune_interval "
                    f"(T={self.prune_interval})"
                )
        elif self.adapt_interval is not None:
            raise PruningConfigError(f"adapt_interval is only used by adaptive methods, not {self.method}")
        if spec.needs_init_masks and not self.init_masks:
            raise PruningConfigError(f"method {self.method} needs init_masks (mask files of the languages)")
        if not spec.per_language and self.languages not in (None, [SHARED]):
            raise PruningConfigError(f"{self.method} prunes one shared mask: languages must be ['{SHARED}'] or unset")
        if spec.mask_keys == "one" and self.languages is not None:
            if len(self.languages) != 1:
                raise PruningConfigError(f"{self.method} is monolingual: give one language, got {self.languages}")
        for name in ("reset_optimizer_state", "rezero_on_adapt", "allow_short_schedule", "freeze_existing"):
            if not isinstance(getattr(self, name), bool):
                raise PruningConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.new_languages is not None:
            if spec.mask_keys != "all":
                raise PruningConfigError(f"new_languages: method {self.method} has no per-language pathways to add to "
                                         "(use pathways or dynamic_pathways)")
            if not self.new_languages or len(set(self.new_languages)) != len(self.new_languages):
                raise PruningConfigError(f"new_languages must be a non-empty list without repeats, got {self.new_languages}")
        if self.freeze_existing and not self.new_languages:
            raise PruningConfigError("freeze_existing: true needs new_languages (the languages being added)")
        if self.freeze_step is not None and self.freeze_step < 0:
            raise PruningConfigError(f"freeze_step must be >= 0, got {self.freeze_step}")
        try:
            schedule = self.sparsity_schedule()
        except ValueError as e:
            raise PruningConfigError(str(e)) from None
        if self.adaptive and self.freeze_step is not None and self.freeze_step < schedule.end:
            self._refuse_short(f"freeze_step ({self.freeze_step}) fixes the masks before the last pruning event "
                               f"(step {schedule.end})")

    @property
    def spec(self) -> PruningMethod:
        """The method's record of traits (:mod:`espnet_pathways.pruning.methods`)."""
        return METHODS[self.method]

    def trained_languages(self, languages: Sequence[str]) -> List[str]:
        """The pathways among ``languages`` that train and get re-ranked: all, or with
        ``freeze_existing`` only ``new_languages``."""
        if not self.freeze_existing:
            return list(languages)
        return [lang for lang in languages if lang in (self.new_languages or ())]

    @property
    def adaptive(self) -> bool:
        """Soft pruning with re-ranking (adaptive IMP/LTH, Dynamic ASR Pathways)."""
        return self.spec.adaptive

    @property
    def batches(self) -> str:
        """``"mixed"`` or ``"monolingual"`` training batches (:func:`method_batches`)."""
        return self.spec.batches

    @property
    def rewinds(self) -> bool:
        """Lottery-ticket rewinding to θ0 after each pruning event."""
        return self.spec.rewinds

    @property
    def prunes(self) -> bool:
        """Whether the method has pruning events (fixed ASR Pathways has none)."""
        return self.spec.prunes

    def sparsity_schedule(self) -> SparsitySchedule:
        return SparsitySchedule(
            kind=self.schedule,
            final=self.target_sparsity,
            initial=self.initial_sparsity,
            start=self.start_step,
            interval=self.prune_interval,
            num_events=self.num_events if self.schedule == "cubic" else None,
            rate=self.rate if self.schedule == "geometric" else None,
        )

    def hard_from(self) -> int:
        """Step from which masks are fixed and applied hard (adaptive methods: after adapting
        for one more interval at the target; other methods are hard from the start)."""
        if not self.adaptive:
            return 0
        if self.freeze_step is not None:
            return self.freeze_step
        return self.sparsity_schedule().end + self.prune_interval

    def steps_needed(self) -> int:
        """Optimizer steps a run needs to reach ``target_sparsity`` (adaptive methods: and to fix
        the masks, :meth:`hard_from`); 0 for a method without pruning events."""
        if not self.prunes:
            return 0
        return max(self.sparsity_schedule().end, self.hard_from())

    def check_steps(self, steps: int, source: str) -> None:
        """Refuse a run of ``steps`` optimizer steps (counted from ``source``) that ends before
        :meth:`steps_needed`, unless ``allow_short_schedule``."""
        needed = self.steps_needed()
        if steps >= needed:
            return
        schedule = self.sparsity_schedule()
        fixed = f", masks fixed at step {self.hard_from()}" if self.adaptive else ""
        self._refuse_short(
            f"pruning_conf: the run has {steps} optimizer steps ({source}), the schedule needs {needed} (last "
            f"pruning event at step {schedule.end}{fixed}); after step {steps} it is at sparsity "
            f"{schedule.sparsity_at(steps):.4g}"
        )

    def _refuse_short(self, problem: str) -> None:
        """A schedule that cannot reach ``target_sparsity``: an error, or a warning with ``allow_short_schedule``."""
        message = f"{problem}, short of target_sparsity {self.target_sparsity}"
        if self.allow_short_schedule:
            logging.warning("%s (allow_short_schedule: true)", message)
            return
        raise PruningConfigError(
            f"{message}; train longer, shorten the schedule or set pruning_conf.allow_short_schedule: true"
        )
