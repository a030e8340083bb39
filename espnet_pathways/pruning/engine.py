"""The pruning engine: runs a pruning method (IMP, LTH, LAP, adaptive, pathways) from the optimizer's steps.

The engine is an ``nn.Module`` registered as ``model.pathway_pruning`` next to the masks
(``model.pathway_masks``, see :mod:`espnet_pathways.masks.attach`). Its state (optimizer steps
taken, events fired, whether masks are fixed) lives in buffers, so it travels with every ESPnet
checkpoint and ``--resume`` continues exactly where a run stopped. Hooks, not a forked trainer:

- ``optimizer.register_step_post_hook``: counts optimizer steps (gradient accumulation respected)
  and fires pruning events (at ``start + k*T``) and adaptation events (every ``n`` steps; for
  Dynamic ASR Pathways, each language's mask after every ``n`` steps on that language's batches);
- a forward pre-hook fires the step-0 event at the first training forward, i.e. after ESPnet has
  loaded ``--init_param``;
- a forward hook adds the active pathway's ``sparsity`` to the stats ESPnet's reporter logs.

Every method goes through the one mask mechanism (``PathwayHandle.set_masks``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn

from espnet_pathways.masks import (
    SHARED,
    MaskMismatchError,
    MaskSet,
    PassThrough,
    PathwayHandle,
    attach,
    model_fingerprint,
    prunable_parameters,
    rank_within,
)
from espnet_pathways.masks.history import MaskHistoryWriter
from espnet_pathways.masks.layout import mask_key
from espnet_pathways.pruning.config import PruningConfig, PruningConfigError

__all__ = [
    "PruningEngine", "ENGINE_ATTR", "INIT_SPARSITY_TOLERANCE", "attach_pruning", "load_init_masks",
]

ENGINE_ATTR = "pathway_pruning"
INIT_SPARSITY_TOLERANCE = 0.01
"""Largest difference between an ``init_masks`` pathway's sparsity and ``initial_sparsity``."""


def _layout_difference(model: Mapping[str, torch.Size], masks: Mapping[str, torch.Size]) -> str:
    """The first tensor where a mask file's layout ``masks`` differs from the ``model``'s prunable set."""
    for name, shape in model.items():
        if name not in masks:
            return f"no mask for the model's tensor {name!r}"
        if tuple(masks[name]) != tuple(shape):
            return f"tensor {name!r} has shape {tuple(masks[name])}, the model's {tuple(shape)}"
    return f"tensor {next(n for n in masks if n not in model)!r} is not prunable in the model"


def load_init_masks(path: str, shapes: Mapping[str, torch.Size]) -> MaskSet:
    """One ``init_masks`` file, checked to cover the prunable tensors ``{name: shape}`` (errors name the
    file and the first tensor that differs)."""
    try:
        loaded = MaskSet.load(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"pruning_conf.init_masks: mask file not found: {path}") from None
    if loaded.shapes != dict(shapes):
        raise MaskMismatchError(
            f"pruning_conf.init_masks: {path} does not fit the model (mask fingerprint {loaded.fingerprint}, "
            f"model {model_fingerprint(shapes)}): {_layout_difference(shapes, loaded.shapes)}"
        )
    return loaded


def attach_pruning(
    model: nn.Module,
    config: PruningConfig,
    lang_list: Sequence[str] = (),
    init_param: Optional[str] = None,
) -> "PruningEngine":
    """Attach all-True masks for the method's languages and the engine that will prune them.

    The masks are filled from ``init_masks`` (pathways methods) and pruned by the schedule when
    training starts; at inference the trained masks come from the checkpoint.
    """
    return PruningEngine(model, config, lang_list, init_param)


class PruningEngine(PassThrough):
    """Drives one pruning method on ``model`` (create with :func:`attach_pruning`)."""

    def __init__(
        self,
        model: nn.Module,
        config: PruningConfig,
        lang_list: Sequence[str] = (),
        init_param: Optional[str] = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.schedule = config.sparsity_schedule() if config.prunes else None
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("events_done", torch.zeros((), dtype=torch.long))
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))
        self.register_buffer("frozen", torch.zeros((), dtype=torch.bool))
        self.lang_list = list(lang_list)
        # optimizer steps taken on each pathway's batches (order: the mask set's languages)
        self.register_buffer("pathway_steps", torch.zeros(len(self._languages()), dtype=torch.long))
        self.rewind_to = config.rewind_to or (init_param.split(":")[0] if init_param else None)
        self._theta0: Optional[Dict[str, torch.Tensor]] = None
        self._optimizers: List[torch.optim.Optimizer] = []
        self._warned_mixed = False  # a step over several languages was logged
        self.history: Optional[MaskHistoryWriter] = None  # record_history(): the writing rank only
        params = prunable_parameters(model, config.include, config.exclude)
        maskset = MaskSet.full(params, self._languages(), method=config.method)
        handle = attach(model, maskset, mode=self._mode(), lang_list=self.lang_list or None)
        object.__setattr__(self, "_owner", model)
        model.add_module(ENGINE_ATTR, self)
        model._ddp_params_and_buffers_to_ignore = list(model._ddp_params_and_buffers_to_ignore) + [
            f"{ENGINE_ATTR}.{name}" for name, _ in self.named_buffers()
        ]
        model.register_forward_pre_hook(self._before_forward)
        model.register_forward_hook(self._report_sparsity)
        self.register_load_state_dict_post_hook(self._after_load)
        self._sparsity = {lang: 0.0 for lang in handle.languages}

    # ------------------------------------------------------------ properties
    @property
    def handle(self) -> PathwayHandle:
        return self._owner.pathway_masks

    def _languages(self) -> List[str]:
        conf = self.config
        if not conf.spec.per_language:
            return [SHARED]
        if conf.new_languages:
            return self._extension_languages()
        if conf.languages:
            return list(conf.languages)
        if conf.spec.mask_keys == "all":
            if not self.lang_list:
                raise ValueError(f"{conf.method} needs the language list (--lang_list) or pruning_conf.languages")
            return list(self.lang_list)
        return [SHARED]

    def _extension_languages(self) -> List[str]:
        """A run that adds ``new_languages`` to a trained model: masks for the whole language list;
        ``languages`` (if given) are the languages whose batches train."""
        conf = self.config
        if not self.lang_list:
            raise PruningConfigError("pruning_conf.new_languages needs the language list (--lang_list)")
        for key in ("new_languages", "languages"):
            unknown = [l for l in getattr(conf, key) or () if l not in self.lang_list]
            if unknown:
                raise PruningConfigError(f"pruning_conf.{key}: {unknown} not in --lang_list {self.lang_list}")
        if conf.freeze_existing and conf.languages and not set(conf.languages) <= set(conf.new_languages):
            raise PruningConfigError(
                f"pruning_conf.languages {conf.languages}: with freeze_existing only the new languages "
                f"{conf.new_languages} train"
            )
        return list(self.lang_list)

    def _freeze_existing(self) -> None:
        """``freeze_existing``: every weight an existing pathway uses and every parameter their decoding
        reads (all that is not prunable, but the rows of tokens they cannot emit) keep their values."""
        handle = self.handle
        existing = [l for l in handle.languages if l not in self.config.new_languages]
        if not existing:
            handle.freeze({})
            return
        used = handle.maskset().union(existing)
        rows = getattr(self._owner, "token_rows_unused_by", None)
        free_rows = rows(existing) if callable(rows) else {}
        frozen = {}
        for name, param in self._owner.named_parameters():
            keep = used[name] if name in used else torch.ones_like(param, dtype=torch.bool)
            frozen[name] = keep & ~free_rows[name].to(keep.device) if name in free_rows and name not in used else keep
        handle.freeze(frozen)
        kept = sum(int(k.sum()) for k in frozen.values())
        logging.info("freeze_existing: %d of %d parameters of %s kept as loaded", kept,
                     sum(p.numel() for p in self._owner.parameters()), existing)

    def _mode(self) -> str:
        return "soft" if self.config.adaptive and not bool(self.frozen) else "hard"

    def sparsity(self, lang: Optional[str] = None) -> float:
        """Current sparsity (over the prunable set) of ``lang`` (default: the active pathway)."""
        return self._sparsity[self.handle.resolve(lang) if lang else self.handle.active]

    # ------------------------------------------------------------ training hooks
    def bind(self, optimizer: torch.optim.Optimizer) -> None:
        """Follow ``optimizer``'s steps; checks the rewind checkpoint and ``init_masks`` once, before training."""
        if self.config.rewinds and self._theta0 is None:
            self._theta0 = self._load_theta0()
        if self.config.init_masks and not self._optimizers:
            self._initial_masks()  # loaded again at the first forward: not held in memory meanwhile
        optimizer.register_step_post_hook(self._after_step)
        self._optimizers.append(optimizer)

    def _before_forward(self, module: nn.Module, args) -> None:
        if module.training and not bool(self.started):
            self._start()
        new = self.config.new_languages
        if module.training and self.config.freeze_existing and self.handle.active not in new:
            raise PruningConfigError(
                f"pruning_conf.freeze_existing: a training batch of language {self.handle.active!r}, whose pathway "
                f"is frozen: train on the new languages {new} only (pruning_conf.languages / the phase's languages)"
            )

    def _after_step(self, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        if optimizer is not self._optimizers[0]:
            return
        handle = self.handle  # its own post-step hook ran first: weights outside the step's region are reset
        self.step += 1
        stepped = [handle.languages.index(lang) for lang in handle.stepped_languages]
        for index in stepped:
            self.pathway_steps[index] += 1
        if len(stepped) > 1 and not self._warned_mixed:
            self._warned_mixed = True
            logging.warning(
                "optimizer step %d accumulated batches of languages %s: each batch's gradient was masked by "
                "its own region and the union stepped (once per run; the task's language runs avoid this)",
                int(self.step), list(handle.stepped_languages),
            )
        if bool(self.frozen):
            return
        step = int(self.step)
        event = self.schedule.event_at(step) if self.schedule is not None else None
        if event is not None and event >= int(self.events_done):
            self._prune_event(event, step)
        else:
            for only in self._adaptations_due(step, stepped):
                self._adapt(step, only)
        if self.config.adaptive and step >= self.config.hard_from():
            self.freeze()

    def _report_sparsity(self, module: nn.Module, args, output) -> None:
        if isinstance(output, tuple) and len(output) == 3 and isinstance(output[1], dict):
            weight = output[2]  # its shape is (1,) once ESPnet made the output gatherable
            shape = weight.shape if isinstance(weight, torch.Tensor) else ()
            device = weight.device if isinstance(weight, torch.Tensor) else None
            output[1]["sparsity"] = torch.full(shape, self.sparsity(), device=device)

    def _after_load(self, module: nn.Module, incompatible_keys) -> None:
        self.handle.set_mode(self._mode())
        self._update_sparsity()
        if self.config.freeze_existing and bool(self.started):  # --resume: the loaded values are the kept ones
            self._freeze_existing()
        if self.history is not None:  # ESPnet's --resume: keep the records this checkpoint has seen
            self.history.resume(int(self.step), bool(self.started), bool(self.frozen))

    def record_history(self, path) -> None:
        """Append the masks to ``path`` at every event (:mod:`espnet_pathways.masks.history`); call it
        before ESPnet resumes a checkpoint, on the rank that writes the outputs."""
        self.history = MaskHistoryWriter(path)

    def _record(self, kind: str, languages: Optional[Sequence[str]] = None) -> None:
        if self.history is not None:
            self.history.append(int(self.step), kind, languages or self.handle.languages, self.handle.maskset())

    # ------------------------------------------------------------ events
    def _start(self) -> None:
        """First training forward: load initial masks, fire a step-0 event."""
        self.started.fill_(True)
        if self.config.init_masks:
            self.handle.set_masks(self._initial_masks())
            self._update_sparsity()
            logging.info("pathways: initial masks %s", {l: round(s, 4) for l, s in self._sparsity.items()})
            self._record("init")
        if self.config.freeze_existing:
            self._freeze_existing()
        if self.schedule is not None and self.schedule.event_at(int(self.step)) == 0 and int(self.events_done) == 0:
            self._prune_event(0, int(self.step))

    def _initial_masks(self) -> MaskSet:
        """Every pathway's mask from ``init_masks`` (a language's own, else the shared one), checked
        against the model, the run's languages and ``initial_sparsity``; errors name the file."""
        languages = self.handle.languages
        found = self._init_mask_files(languages)
        keys = {l: mask_key(found, l) for l in languages}
        missing = [l for l, k in keys.items() if k is None]
        if missing:
            raise PruningConfigError(
                f"pruning_conf.init_masks: no mask for language(s) {missing} in {self.config.init_masks} "
                f"(languages {sorted(found)})"
            )
        for key in dict.fromkeys(keys[l] for l in self.config.trained_languages(languages)):  # not the frozen
            self._check_initial_sparsity(key, *found[key])
        return MaskSet({l: found[k][1][k] for l, k in keys.items()}, method=self.config.method)

    def _init_mask_files(self, languages: Sequence[str]) -> Dict[str, Tuple[str, MaskSet]]:
        """Mask key (a language of the run, or the shared one) -> (the first ``init_masks`` file holding
        it, its masks); a file that fits no language of the run is refused."""
        shapes = {n: p.shape for n, p in self.handle.parameters_by_name().items()}
        found: Dict[str, Tuple[str, MaskSet]] = {}
        for path in self.config.init_masks:
            loaded = load_init_masks(path, shapes)
            used = [l for l in loaded.languages if l in languages or l == SHARED]
            if not used:
                raise PruningConfigError(
                    f"pruning_conf.init_masks: {path} holds language(s) {list(loaded.languages)}, none of the "
                    f"run's languages {list(languages)} (--lang_list / pruning_conf.languages)"
                )
            for lang in used:
                found.setdefault(lang, (path, loaded))
        return found

    def _check_initial_sparsity(self, key: str, path: str, masks: MaskSet) -> None:
        """Refuse an initial mask whose sparsity is not the schedule's start (``initial_sparsity``)."""
        if self.schedule is None or self.schedule.kind == "constant":
            return  # fixed pathways keep their masks; a constant schedule prunes to the target at once
        sparsity, expected = masks.sparsity(key), self.config.initial_sparsity
        if abs(sparsity - expected) > INIT_SPARSITY_TOLERANCE:
            raise PruningConfigError(
                f"pruning_conf.init_masks: {path}, language {key!r}, has sparsity {sparsity:.4f}, but "
                f"pruning_conf.initial_sparsity is {expected} (tolerance {INIT_SPARSITY_TOLERANCE}): the first "
                f"pruning event would jump to it; set initial_sparsity to the masks' sparsity"
            )

    def _adaptations_due(self, step: int, stepped: Sequence[int]) -> List[Optional[str]]:
        """The re-rankings that follow this step: a language, or None for every pathway at once.

        ``stepped``: indices of the pathways whose gradients the step applied. Dynamic ASR Pathways
        counts each language's own steps: its mask is re-ranked right after n steps on its
        batches, so each language is ranked on weights it has just trained (masks initialised
        identically, e.g. from LAP, become language-specific this way).
        """
        conf = self.config
        if not conf.adaptive or int(self.events_done) == 0 or step >= conf.hard_from():
            return []
        if conf.spec.adapts_per_language:
            languages = self.handle.languages
            return [languages[i] for i in stepped if int(self.pathway_steps[i]) % conf.adapt_interval == 0]
        return [None] if (step - conf.start_step) % conf.adapt_interval == 0 else []

    def _rerank(self, sparsity: float, only: Optional[str] = None, current: Optional[MaskSet] = None) -> MaskSet:
        """New masks at ``sparsity`` for every pathway (or just ``only``), by the method's candidate rule.

        ``current``: the attached masks, when the caller already holds a copy of them.
        """
        handle, conf = self.handle, self.config
        weights = handle.full_weights()
        if current is None:
            current = handle.maskset()
        masks = {lang: current[lang] for lang in handle.languages}
        rule = conf.spec.candidates
        for lang in conf.trained_languages([only] if only else handle.languages):  # freeze_existing: new ones
            if rule == "region":
                candidates = handle.region(lang)  # m_z ∪ free zone F_z
            elif rule == "all":
                candidates = None  # soft: every weight competes, regrown ones can re-enter
            else:
                candidates = current[lang]  # IMP/LTH/LAP: prune further from m ⊙ θ
            masks[lang] = rank_within(weights, sparsity, conf.ranking, candidates)
        return MaskSet(masks, method=conf.method)

    def _prune_event(self, event: int, step: int) -> None:
        sparsity = self.schedule.sparsity_of_event(event)
        new = self._rerank(sparsity)
        self.handle.set_masks(new, weights=self._rewind() if self.config.rewinds else None)
        if not self.config.adaptive:
            self._zero_pruned_optimizer_state()
        self.events_done.fill_(event + 1)
        self._update_sparsity()
        self._record("prune")
        upcoming = [s for s, _ in self.schedule.events() if s > step]
        logging.info(
            "pruning event %d/%d at step %d (%s): sparsity %s, masks %s; next %s",
            event + 1, self.schedule.last_event + 1, step, self.config.method,
            {l: round(s, 4) for l, s in self._sparsity.items()}, self._checked_digest(),
            f"event at step {upcoming[0]}" if upcoming else "event: none (target reached)",
        )

    def _adapt(self, step: int, only: Optional[str]) -> None:
        sparsity = self.schedule.sparsity_of_event(int(self.events_done) - 1)
        before = self.handle.maskset()
        new = self._rerank(sparsity, only, current=before)
        self.handle.set_masks(new, zero_pruned=self.config.rezero_on_adapt)
        self._update_sparsity()
        self._record("adapt", [only] if only else None)
        reentered = {
            lang: sum(int((new[lang][n] & ~before[lang][n]).sum()) for n in new.names)
            for lang in ([only] if only else new.languages)
        }
        logging.info("adaptation at step %d: re-ranked at sparsity %.4f, weights re-entering %s", step, sparsity, reentered)

    def freeze(self) -> None:
        """Fix the masks and apply them hard from now on (adaptive methods, end of pruning)."""
        if bool(self.frozen):
            return
        if self.config.adaptive and int(self.events_done) > 0:
            final = self._rerank(self.schedule.sparsity_of_event(int(self.events_done) - 1))
        else:
            final = self.handle.maskset()
        self.frozen.fill_(True)
        self.handle.set_masks(final, mode="hard")
        self._record("freeze")
        self._zero_pruned_optimizer_state()
        self._update_sparsity()
        logging.info("masks fixed at step %d (hard from now on): sparsity %s, masks %s", int(self.step),
                     {l: round(s, 4) for l, s in self._sparsity.items()}, self._checked_digest())
        if self.schedule is not None and int(self.events_done) <= self.schedule.last_event:
            logging.warning("masks fixed after pruning event %d of %d: short of target_sparsity %s (the run ended "
                            "before its schedule)", int(self.events_done), self.schedule.last_event + 1,
                            self.config.target_sparsity)

    # ------------------------------------------------------------ helpers
    def _checked_digest(self) -> str:
        """The masks' digest; under torch.distributed, checked to be the same on every rank."""
        digest = self.handle.maskset().digest()
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return digest
        digests = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(digests, digest)
        if len(set(digests)) != 1:
            raise RuntimeError(f"pruning masks diverged across ranks at step {int(self.step)}: {digests}")
        return f"{digest} (identical on {len(digests)} ranks)"

    def _update_sparsity(self) -> None:
        maskset = self.handle.maskset()
        self._sparsity = {lang: maskset.sparsity(lang) for lang in maskset.languages}

    def _load_theta0(self) -> Dict[str, torch.Tensor]:
        if not self.rewind_to:
            raise ValueError("lottery-ticket rewinding needs pruning_conf.rewind_to or --init_param (θ0)")
        path = Path(self.rewind_to)
        if not path.is_file():
            raise FileNotFoundError(f"pruning_conf.rewind_to: checkpoint not found: {path}")
        state = torch.load(path, map_location="cpu", weights_only=False)
        if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
            state = state["model"]  # an ESPnet checkpoint.pth
        theta0 = {}
        for name, param in self._owner.named_parameters():
            if name not in state:
                raise MaskMismatchError(f"rewind checkpoint {path} has no parameter {name!r}")
            if tuple(state[name].shape) != tuple(param.shape):
                raise MaskMismatchError(
                    f"rewind checkpoint {path}: {name!r} has shape {tuple(state[name].shape)}, "
                    f"the model has {tuple(param.shape)}"
                )
            theta0[name] = state[name].detach().clone()
        return theta0

    @torch.no_grad()
    def _rewind(self) -> Dict[str, torch.Tensor]:
        """θ ← θ0 and a fresh optimizer: copies the unmasked parameters, returns the masked ones'
        θ0 (for :meth:`PathwayHandle.set_masks`, which applies it with the new masks)."""
        if self._theta0 is None:
            self._theta0 = self._load_theta0()
        masked = set(self.handle.names)
        for name, param in self._owner.named_parameters():
            if name not in masked:
                param.copy_(self._theta0[name].to(param.device, param.dtype))
        for optimizer in self._optimizers:
            optimizer.state.clear()
        return {name: self._theta0[name] for name in masked}

    @torch.no_grad()
    def _zero_pruned_optimizer_state(self) -> None:
        """Zero optimizer state (momentum, second moments) of weights outside every mask."""
        if not self.config.reset_optimizer_state:
            return
        union = self.handle.maskset().union()
        params = self.handle.parameters_by_name()
        for optimizer in self._optimizers:
            for name, param in params.items():
                for value in optimizer.state.get(param, {}).values():
                    if isinstance(value, torch.Tensor) and value.shape == param.shape:
                        value.masked_fill_(~union[name].to(value.device), 0)

    def extra_repr(self) -> str:
        return f"method={self.config.method}, step={int(self.step)}, events_done={int(self.events_done)}"
