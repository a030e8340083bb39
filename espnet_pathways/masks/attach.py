"""Attaching a :class:`MaskSet` to a model: one mechanism for every pruning method.

Each language l has a *region* r_l, the weights its batches see and train:

- ``hard`` mode: r_l = m_l (the language's mask);
- ``soft`` mode: r_l = m_l ∪ F_l, with the free zone F_l = 1 − ∪_{k≠l} m_k (Dynamic ASR Pathways'
  adaptive masking; with a single mask this is every weight: pruned weights were zeroed at the
  event but stay trainable).

The parameters hold the active language's effective weights θ ⊙ r_l *in place*; the rest of θ (weights
of other pathways) waits in a stash. So the forward pass costs nothing extra and no weight is copied
per language. Gradients are multiplied by r_l as they are accumulated, and after every optimizer step
weights outside the step's region are reset to zero: a batch of language l never changes a weight
outside its region, momentum and Adam moments included. Weights outside every mask are set to exactly
zero whenever masks are attached or replaced (the pruning event); in hard mode they stay zero.

The handle owns the whole optimizer step (global ``torch.optim`` pre- and post-step hooks):

- before the step it fixes the step's region: the region of the languages whose micro-batches
  contributed gradient since the last step (gradient accumulation);
- right after the step it resets the weights outside that region, in a post-step hook that it
  keeps first in the optimizer's own hooks (which run before any global one). So no hook, the
  pruning engine's or a user's, ever sees the optimizer's update of another pathway's weights, and
  none can fold it into the stash.

Gradient accumulation over micro-batches of *different* languages is applied exactly: each
micro-batch's gradient is masked by its own language's region (before it is accumulated, once the
group has seen a second language), and the step updates the union of the group's regions, so a
weight exclusive to language a moves only by a's gradient, and a weight outside every region of the
group does not move. (Monolingual groups, which the pathway methods' batch sampler makes, cost
nothing extra.)

The handle is an ``nn.Module`` registered as ``model.pathway_masks``: the masks are boolean buffers
in the model's ``state_dict`` (the stash is folded back, so checkpoints always hold the full θ),
survive ``copy.deepcopy``, pickling, ``load_state_dict`` and ESPnet's n-best averaging (averaged
boolean masks load as their union, identical masks exactly), and are excluded from
DistributedDataParallel's buffer broadcast. The active language follows the ``lang`` keyword of the
model's forward (integer ids into ``lang_list``, or codes), or :meth:`PathwayHandle.activate`; a model
that defines ``select_language(code)`` is told the language at every activation (the transducer
restricts its output to that language's vocabulary).

Frozen elements (:meth:`PathwayHandle.freeze`, adding a language without touching the others): any
elements of any parameters of the model, masked or not, keep their exact values. Their gradient is
zeroed as it is accumulated, and right after every optimizer step (in the same first post-step
hook) they are written back from a copy, so no optimizer (momentum, Adam's moments, weight decay)
and no later hook sees them move.
"""

from __future__ import annotations

import dataclasses
import functools
import weakref
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from espnet_pathways.masks.layout import ATTR, SHARED, buffer_name, mask_key
from espnet_pathways.masks.maskset import MaskMismatchError, MaskSet

__all__ = ["attach", "PathwayHandle", "PassThrough", "MODES"]

MODES = ("hard", "soft")

LangSpec = Union[None, str, Sequence[str], torch.Tensor]

_LIVE_HANDLES: "weakref.WeakSet[PathwayHandle]" = weakref.WeakSet()


def _before_any_optimizer_step(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    handles = list(_LIVE_HANDLES)
    if handles:
        _keep_finisher_first(optimizer)
    for handle in handles:
        handle._before_optimizer_step(optimizer)


def _finish_any_optimizer_step(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    for handle in list(_LIVE_HANDLES):
        handle._finish_step()


def _keep_finisher_first(optimizer: torch.optim.Optimizer) -> None:
    """Make :func:`_finish_any_optimizer_step` the first of ``optimizer``'s post-step hooks."""
    hooks = optimizer._optimizer_step_post_hooks
    hook_id = getattr(optimizer, "_pathway_finisher_id", None)
    if hook_id not in hooks:
        hook_id = optimizer.register_step_post_hook(_finish_any_optimizer_step).id
        optimizer._pathway_finisher_id = hook_id
    hooks.move_to_end(hook_id, last=False)


register_optimizer_step_pre_hook(_before_any_optimizer_step)


class PassThrough(nn.Module):
    """A module that containers may call (``nn.Sequential`` calls every child): returns its input."""

    def forward(self, x):
        return x


class _Buffers(nn.Module):
    """An ordered list of buffers named after parameters."""

    def __init__(self, names: Sequence[str], tensors: Sequence[torch.Tensor], persistent: bool) -> None:
        super().__init__()
        for name, tensor in zip(names, tensors):
            self.register_buffer(buffer_name(name), tensor, persistent=persistent)

    def list(self) -> List[torch.Tensor]:
        return list(self._buffers.values())


@dataclasses.dataclass
class _Frozen:
    """Elements of one parameter kept at ``value`` (index: its position among the masked ones, or None)."""

    name: str
    param: nn.Parameter
    keep: torch.Tensor
    value: torch.Tensor
    index: Optional[int]


def _zero_frozen_grad(keep: torch.Tensor, param: torch.Tensor) -> None:
    if param.grad is not None:
        param.grad.masked_fill_(keep, 0.0)


def attach(
    model: nn.Module,
    maskset: MaskSet,
    mode: str = "hard",
    lang_list: Optional[Sequence[str]] = None,
) -> "PathwayHandle":
    """Attach ``maskset`` to ``model`` and return the handle (also ``model.pathway_masks``).

    Args:
        model: the module whose parameters the masks address by fully-qualified name.
        maskset: the masks; every tensor name must be a parameter of ``model`` with the same shape.
        mode: ``"hard"`` or ``"soft"`` (see the module docstring).
        lang_list: language codes by integer id, used to read a ``lang`` tensor passed to the
            model's forward (ESPnet's ``utt2lang_id,lang,text_int`` data entry).

    Raises:
        MaskMismatchError: naming the first tensor whose name or shape does not fit the model.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if isinstance(getattr(model, ATTR, None), PathwayHandle):
        raise ValueError(f"{type(model).__name__} already has pathway masks attached; detach() them first")
    return PathwayHandle(model, maskset, mode, lang_list)


class PathwayHandle(PassThrough):
    """Pathway masks attached to a model (create with :func:`attach`).

    Attributes:
        active: the language whose region the parameters hold (None between the two hooks of a
            step that accumulated several languages: then they hold the union of their regions).
        stepped_languages: the languages whose gradients the last optimizer step applied.
    """

    def __init__(
        self, model: nn.Module, maskset: MaskSet, mode: str, lang_list: Optional[Sequence[str]]
    ) -> None:
        super().__init__()
        params = dict(model.named_parameters())
        problem = maskset.first_mismatch(params)
        if problem:
            raise MaskMismatchError(f"the masks do not fit {type(model).__name__}: {problem}")
        self.mode = mode
        self.names: Tuple[str, ...] = maskset.names
        self.languages: Tuple[str, ...] = maskset.languages
        self.lang_list: Tuple[str, ...] = tuple(lang_list) if lang_list is not None else tuple(
            l for l in self.languages if l != SHARED
        )
        self.method = maskset.method
        self.active: Optional[str] = None
        self.stepped_languages: Tuple[str, ...] = ()
        self._group: List[str] = []  # languages whose backward contributed since the last step
        self._mixed = False  # the group holds several languages: mask gradients before accumulation
        self._stepping: Optional[List[int]] = None  # indices of the parameters being stepped
        self._params: List[nn.Parameter] = [params[n] for n in self.names]
        device = self._params[0].device
        self.masks = nn.ModuleDict(
            {
                lang: _Buffers(self.names, [maskset[lang][n].to(device).clone() for n in self.names], True)
                for lang in self.languages
            }
        )
        self.work = _Buffers(
            [f"active.{n}" for n in self.names] + ([f"stash.{n}" for n in self.names] if self._multi else []),
            [torch.ones_like(p.detach()) for p in self._params]
            + ([torch.zeros_like(p.detach()) for p in self._params] if self._multi else []),
            persistent=False,
        )
        self.regions: Dict[str, List[torch.Tensor]] = {}
        self._frozen: List[_Frozen] = []
        self._frozen_masked: Dict[int, torch.Tensor] = {}  # masked parameter index -> its frozen elements
        self._restoring: List[_Frozen] = []  # the frozen entries the running optimizer step holds
        object.__setattr__(self, "_owner", model)
        model.add_module(ATTR, self)
        self._install_module_hooks(model)
        self._install_param_hooks()
        self._refresh(loaded=[True] * len(self._params), zero_pruned=True)

    # ------------------------------------------------------------------ state
    @property
    def _multi(self) -> bool:
        return len(self.languages) > 1

    def _actives(self) -> List[torch.Tensor]:
        return self.work.list()[: len(self._params)]

    def _stashes(self) -> List[Optional[torch.Tensor]]:
        if not self._multi:
            return [None] * len(self._params)
        return self.work.list()[len(self._params) :]

    def _masks_of(self, lang: str) -> List[torch.Tensor]:
        return self.masks[lang].list()

    def _compute_regions(self) -> None:
        """r_l = m_l (hard) or m_l ∪ F_l (soft); ``self.masking`` is False when every region is full."""
        self.regions = {}
        for lang in self.languages:
            own = self._masks_of(lang)
            if self.mode == "hard":
                self.regions[lang] = own
                continue
            others = [l for l in self.languages if l != lang]
            region = []
            for i, mask in enumerate(own):
                taken = torch.zeros_like(mask)
                for other in others:
                    taken |= self._masks_of(other)[i]
                region.append(mask | ~taken)
            self.regions[lang] = region
        self.masking = not all(bool(r.all()) for regs in self.regions.values() for r in regs)

    def _default_language(self) -> str:
        return mask_key(self.languages, None) or self.languages[0]

    # ----------------------------------------------------- weights in place
    @torch.no_grad()
    def _gather(self) -> None:
        """Parameters := full θ (fold the stash back)."""
        for param, stash in zip(self._params, self._stashes()):
            if stash is not None:
                param.add_(stash)

    def _scatter(self, lang: str, gathered: bool = True) -> None:
        """Keep θ ⊙ r_lang in place and stash the rest (see :meth:`_split`)."""
        self._split(self.regions[lang], gathered)
        self.active = lang

    @torch.no_grad()
    def _split(self, region: Sequence[torch.Tensor], gathered: bool) -> None:
        """Keep θ ⊙ region in place and stash the rest.

        Args:
            region: one boolean tensor per masked parameter.
            gathered: the parameters hold the full θ; otherwise they hold the split form of the
                previous region and the stash the rest, and the switch is done in four passes:
                stash = θ, p = θ ⊙ r, stash = θ − p (exact: x − x = 0 and x − 0 = x).
        """
        for param, active, stash, part in zip(self._params, self._actives(), self._stashes(), region):
            active.copy_(part)
            if stash is None:
                param.mul_(active)
                continue
            if gathered:
                stash.copy_(param)
            else:
                stash.add_(param)
            torch.mul(stash, active, out=param)
            stash.sub_(param)

    def _union_region(self, languages: Sequence[str]) -> List[torch.Tensor]:
        """∪ of the languages' regions, per masked parameter."""
        union = [r.clone() for r in self.regions[languages[0]]]
        for lang in languages[1:]:
            for acc, part in zip(union, self.regions[lang]):
                acc |= part
        return union

    @torch.no_grad()
    def _refresh(self, loaded: Sequence[bool], zero_pruned: bool) -> None:
        """Re-derive regions and re-split θ after the masks, the mode or the weights changed.

        Args:
            loaded: per parameter, whether it already holds the full θ (freshly loaded or
                attached); the others still hold the split form and are gathered first.
            zero_pruned: set weights outside every mask to zero (a pruning event, or hard mode).
        """
        for param, stash, full in zip(self._params, self._stashes(), loaded):
            if stash is not None and not full:
                param.add_(stash)
        self._compute_regions()
        if zero_pruned:
            for param, *masks in zip(self._params, *(self._masks_of(l) for l in self.languages)):
                union = masks[0]
                for mask in masks[1:]:
                    union = union | mask
                param.masked_fill_(~union, 0.0)
        self._scatter(self.active or self._default_language())

    # ------------------------------------------------------------- public API
    def activate(self, lang: Optional[str]) -> None:
        """Make ``lang``'s pathway the active one (falls back to the shared mask ``"*"``; None: that one)."""
        code, lang = lang, self.resolve(lang)
        if self._group and (self._mixed or lang != self.active):
            self._check_group(lang)
        if lang != self.active:
            self._scatter(lang, gathered=False)
        listener = getattr(self._owner, "select_language", None)
        if callable(listener):
            listener(code)

    def resolve(self, lang: Optional[str]) -> str:
        """The mask-set key used for language ``lang`` (None: the shared mask)."""
        key = mask_key(self.languages, lang)
        if key is None:
            raise KeyError(f"language {lang!r} has no pathway (mask set languages: {', '.join(self.languages)})")
        return key

    def activate_batch(self, lang: LangSpec) -> None:
        """Activate the pathway of a batch's languages (ids into ``lang_list`` or codes).

        A batch mixing languages runs through the shared mask ``"*"``; without one it is an error.
        """
        codes = self._codes(lang)
        if len(codes) == 1:
            self.activate(codes[0])
        elif SHARED in self.languages:
            self.activate(SHARED)
        else:
            raise ValueError(
                f"batch mixes languages {codes} but the mask set has no shared mask '*': "
                "use single-language batches (utt2category) or add a shared mask"
            )

    def _codes(self, lang: LangSpec) -> List[str]:
        if isinstance(lang, str):
            return [lang]
        if isinstance(lang, torch.Tensor):
            ids = sorted({int(i) for i in lang.reshape(-1).tolist() if int(i) >= 0})
            for i in ids:
                if i >= len(self.lang_list):
                    raise KeyError(f"language id {i} is outside lang_list {list(self.lang_list)}")
            return [self.lang_list[i] for i in ids]
        return sorted(set(lang))

    def maskset(self) -> MaskSet:
        """The current masks as a :class:`MaskSet` (CPU copies)."""
        return MaskSet(
            {l: {n: m.detach().cpu().clone() for n, m in zip(self.names, self._masks_of(l))} for l in self.languages},
            method=self.method,
        )

    def region(self, lang: str) -> Dict[str, torch.Tensor]:
        """Language ``lang``'s region r_lang (what its batches see and train)."""
        return dict(zip(self.names, self.regions[self.resolve(lang)]))

    def parameters_by_name(self) -> Dict[str, nn.Parameter]:
        """The masked parameters by name."""
        return dict(zip(self.names, self._params))

    @torch.no_grad()
    def full_weights(self) -> Dict[str, torch.Tensor]:
        """Full θ of every masked tensor (parameter + stash), as new tensors."""
        return {
            n: (p.detach().clone() if s is None else p.detach() + s)
            for n, p, s in zip(self.names, self._params, self._stashes())
        }

    @torch.no_grad()
    def set_masks(
        self,
        maskset: MaskSet,
        mode: Optional[str] = None,
        zero_pruned: bool = True,
        weights: Optional[Mapping[str, torch.Tensor]] = None,
    ) -> None:
        """Replace the masks (a pruning event): weights outside every new mask become zero.

        Args:
            maskset: same languages and tensors as the attached set.
            mode: switch between ``"hard"`` and ``"soft"`` at the same time (optional).
            zero_pruned: zero the weights outside every new mask; ``False`` keeps their values
                (soft mode only: a re-ranking that lets pruned weights keep regrowing).
            weights: new full θ of (some of) the masked tensors by name, loaded before the masks
                are applied (a lottery-ticket rewind).
        """
        if not zero_pruned and (mode or self.mode) == "hard":
            raise ValueError("set_masks: hard masks always zero the pruned weights (zero_pruned=False needs soft mode)")
        if maskset.languages != self.languages or maskset.names != self.names:
            raise MaskMismatchError(
                f"set_masks: mask set covers languages {maskset.languages} and {len(maskset.names)} "
                f"tensors; attached: {self.languages} and {len(self.names)} tensors"
            )
        if mode is not None:
            if mode not in MODES:
                raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
            self.mode = mode
        self._gather()
        if weights is not None:
            params = self.parameters_by_name()
            for name, value in weights.items():
                params[name].copy_(value.to(params[name].device, params[name].dtype))
        for lang in self.languages:
            for buf, name in zip(self._masks_of(lang), self.names):
                buf.copy_(maskset[lang][name])
        self._refresh(loaded=[True] * len(self._params), zero_pruned=zero_pruned)
        if maskset.method is not None:
            self.method = maskset.method

    @torch.no_grad()
    def set_mode(self, mode: str) -> None:
        """Switch between ``"hard"`` (weights outside every mask become zero) and ``"soft"``."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self._gather()
        self.mode = mode
        self._refresh(loaded=[True] * len(self._params), zero_pruned=mode == "hard")

    @torch.no_grad()
    def freeze(self, frozen: Mapping[str, torch.Tensor]) -> None:
        """Keep the elements ``frozen`` marks at their current values from now on (replaces an
        earlier :meth:`freeze`; an empty mapping unfreezes).

        Args:
            frozen: parameter name (any of the model's) -> BoolTensor of its shape, True = kept.

        Raises:
            MaskMismatchError: a name that is not a parameter of the model, or a shape that differs.
        """
        self._remove_freeze_hooks()
        params = dict(self._owner.named_parameters())
        full = self.full_weights()
        index = {name: i for i, name in enumerate(self.names)}
        entries = []
        for name, keep in frozen.items():
            if name not in params:
                raise MaskMismatchError(f"freeze: the model has no parameter {name!r}")
            param = params[name]
            if tuple(keep.shape) != tuple(param.shape):
                raise MaskMismatchError(f"freeze: {name!r} has shape {tuple(param.shape)}, the frozen mask {tuple(keep.shape)}")
            keep = keep.to(device=param.device, dtype=torch.bool)
            if bool(keep.any()):
                value = full[name] if name in index else param.detach().clone()
                entries.append(_Frozen(name, param, keep, value, index.get(name)))
        self._frozen = entries
        self._frozen_masked = {entry.index: entry.keep for entry in entries if entry.index is not None}
        self._install_freeze_hooks()

    def frozen(self) -> Dict[str, torch.Tensor]:
        """The frozen elements by parameter name (see :meth:`freeze`)."""
        return {entry.name: entry.keep.clone() for entry in self._frozen}

    @torch.no_grad()
    def squash(self, lang: Optional[str] = None) -> nn.Module:
        """Bake ``lang``'s mask (default: the active pathway) into plain weights and detach.

        The model is left as an ordinary module whose weights are exactly θ ⊙ m_lang.
        """
        lang = self.resolve(lang) if lang is not None else (self.active or self._default_language())
        self._gather()
        for param, mask in zip(self._params, self._masks_of(lang)):
            param.masked_fill_(~mask, 0.0)
        return self._remove(gather=False)

    def detach(self) -> nn.Module:
        """Remove the masks and hooks; the parameters keep the full θ (pruned weights stay 0)."""
        return self._remove(gather=True)

    # ------------------------------------------------------------------ hooks
    def _install_module_hooks(self, model: nn.Module) -> None:
        self._module_hooks: List[Tuple[nn.Module, str, int]] = []
        hook = model.register_forward_pre_hook(self._before_forward, with_kwargs=True)
        self._module_hooks.append((model, "_forward_pre_hooks", hook.id))
        if self._multi:
            owners: Dict[int, Tuple[nn.Module, List[Tuple[str, int]]]] = {}
            modules = dict(model.named_modules())
            for i, name in enumerate(self.names):
                owner_name, _, local = name.rpartition(".")
                owner = modules[owner_name]
                owners.setdefault(id(owner), (owner, []))[1].append((local, i))
            for owner, entries in owners.values():
                hook = owner.register_state_dict_post_hook(functools.partial(self._full_state, entries))
                self._module_hooks.append((owner, "_state_dict_hooks", hook.id))
        self.register_load_state_dict_post_hook(self._after_load)
        model._ddp_params_and_buffers_to_ignore = list(
            getattr(model, "_ddp_params_and_buffers_to_ignore", [])
        ) + [f"{ATTR}.{name}" for name, _ in self.named_buffers()]

    def _install_param_hooks(self) -> None:
        trainable = [(i, p) for i, p in enumerate(self._params) if p.requires_grad]
        self._param_hooks = [p.register_hook(functools.partial(self._mask_incoming, i)) for i, p in trainable] + [
            p.register_post_accumulate_grad_hook(functools.partial(self._mask_grad, i)) for i, p in trainable
        ]
        _LIVE_HANDLES.add(self)
        self._install_freeze_hooks()

    def _install_freeze_hooks(self) -> None:
        """Frozen elements of parameters the masks do not cover: zero their gradient once accumulated."""
        self._freeze_hooks = [
            entry.param.register_post_accumulate_grad_hook(functools.partial(_zero_frozen_grad, entry.keep))
            for entry in self._frozen
            if entry.index is None and entry.param.requires_grad
        ]

    def _remove_freeze_hooks(self) -> None:
        for hook in getattr(self, "_freeze_hooks", []):
            hook.remove()
        self._freeze_hooks = []

    def _before_forward(self, module: nn.Module, args, kwargs) -> None:
        lang = kwargs.get("lang")
        if lang is not None:
            self.activate_batch(lang)

    def _mask_incoming(self, index: int, grad: torch.Tensor) -> Optional[torch.Tensor]:
        """Before accumulation: in a group of several languages, mask each micro-batch's own gradient."""
        if self._mixed and self.masking:
            return grad * self._actives()[index]
        return None

    def _mask_grad(self, index: int, param: torch.Tensor) -> None:
        """After accumulation: a monolingual group's gradient is masked by its region in place."""
        if self.masking and not self._mixed and param.grad is not None:
            param.grad.mul_(self._actives()[index])
        frozen = self._frozen_masked.get(index)
        if frozen is not None and param.grad is not None:
            param.grad.masked_fill_(frozen, 0.0)
        if self.active not in self._group:
            self._group.append(self.active)

    def _check_group(self, lang: str) -> None:
        """A forward of ``lang`` while gradients of ``self._group`` may be pending."""
        if not self._grads_pending():
            self._group, self._mixed = [], False  # dropped without a step (a skipped step's zero_grad)
        elif self._group != [lang]:
            self._mixed = True

    def _grads_pending(self) -> bool:
        grads = [p.grad for p in self._params if p.grad is not None]
        return any(bool(g.any()) for g in grads)

    @torch.no_grad()
    def _before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Fix the step's region: the union of the accumulated languages' regions."""
        stepped = {id(p) for group in optimizer.param_groups for p in group["params"]}
        self._restoring = [entry for entry in self._frozen if id(entry.param) in stepped]
        indices = [i for i, p in enumerate(self._params) if id(p) in stepped]
        if not indices:
            return
        self.stepped_languages = tuple(self._group) or ((self.active,) if self.active else ())
        if self.masking and len(self._group) > 1:
            self._split(self._union_region(self._group), gathered=False)
            self.active = None
        self._stepping = indices

    @torch.no_grad()
    def _finish_step(self) -> None:
        """Reset the stepped parameters outside the step's region; back to one language's region."""
        stepped, self._stepping = self._stepping, None
        restoring, self._restoring = self._restoring, []
        if stepped is not None and self.masking:
            torch._foreach_mul_([self._params[i] for i in stepped], [self._actives()[i] for i in stepped])
        actives = self._actives()
        for entry in restoring:  # masked: only inside the active region (outside it the stash holds θ)
            keep = entry.keep if entry.index is None else entry.keep & actives[entry.index].bool()
            entry.param.copy_(torch.where(keep, entry.value, entry.param))
        if stepped is None:
            return
        if self.active is None and self._group:
            self._scatter(self._group[-1], gathered=False)
        self._group, self._mixed = [], False

    def _full_state(self, entries, module, state_dict, prefix, local_metadata) -> None:
        stashes = self._stashes()
        for local, index in entries:
            key = prefix + local
            value = state_dict.get(key)
            if value is not None and not isinstance(value, nn.Parameter):
                state_dict[key] = value + stashes[index]

    def _after_load(self, module: nn.Module, incompatible_keys) -> None:
        self._stepping, self._group, self._mixed = None, [], False  # loaded weights replace any step
        missing = set(incompatible_keys.missing_keys)
        self._refresh(loaded=[name not in missing for name in self.names], zero_pruned=self.mode == "hard")

    def _remove(self, gather: bool) -> nn.Module:
        model = self._owner
        if gather:
            self._gather()
        for owner, attr, hook_id in self._module_hooks:
            getattr(owner, attr).pop(hook_id, None)
            owner._forward_pre_hooks_with_kwargs.pop(hook_id, None)
        for hook in self._param_hooks:
            hook.remove()
        self._remove_freeze_hooks()
        _LIVE_HANDLES.discard(self)
        ours = {f"{ATTR}.{name}" for name, _ in self.named_buffers()}
        model._ddp_params_and_buffers_to_ignore = [
            n for n in getattr(model, "_ddp_params_and_buffers_to_ignore", []) if n not in ours
        ]
        del model._modules[ATTR]
        return model

    # ------------------------------------------------------ copy and pickle
    def _apply(self, fn, recurse: bool = True):
        # ``.to()``/``.half()`` replace buffers by new tensors: re-derive the regions from them.
        module = super()._apply(fn, recurse)
        self._compute_regions()
        return module

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_param_hooks", None)  # tensor hooks do not travel with copied parameters
        state.pop("_freeze_hooks", None)
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._install_param_hooks()

    def extra_repr(self) -> str:
        return f"mode={self.mode}, languages={list(self.languages)}, tensors={len(self.names)}, active={self.active}"

