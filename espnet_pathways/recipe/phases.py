"""The training phases of stage 11: each has a config and an experiment dir, run in order.

Without a phases file there is one phase (``--train_config`` into ``--asr_exp``). A phases file
(YAML) lists several, e.g. dense training, then pruning per language, then pathway training::

    phases:
      - name: dense
        config: conf/train_asr_emformer_demo.yaml
        exp: asr_dense                 # relative to --expdir
        decode: true                   # also decode this phase in stages 12-13
      - name: lth
        config: [conf/train_asr_emformer_demo.yaml, conf/prune/lth.yaml]   # merged, later wins
        exp: asr_lth
        init_from: dense               # --init_param <expdir>/asr_dense/<model_file>
        foreach_language: true         # -> phases lth_en, lth_fr, ... (exp asr_lth_en, ...)
      - name: pathways
        config: [conf/train_asr_emformer_demo.yaml, conf/prune/pathways.yaml]
        exp: asr_pathways
        init_from: dense
        init_masks_from: [lth]         # --pruning_conf init_masks=[<lth_en exp>/masks.pwm, ...]
        args: [--max_epoch, "3"]       # extra training options of this phase
        seeds: [1, 2, 3]               # -> pathways_s1, ... (--seed 1, exp asr_pathways_s1, ...)

Keys of a phase (``name``, ``config`` and ``exp`` are required):

- ``config``: a training YAML, or a list of them merged into ``<exp>/phase_config.yaml`` (mappings
  merge key by key, recursively; any other value of a later file replaces the earlier one). This
  lets ``conf/prune/*.yaml`` hold only ``pruning_conf`` and schedule options on top of the dense
  model's config, so a pruning phase always has the dense phase's architecture.
- ``init_from``: an earlier phase whose ``<model_file>`` initialises this one (``--init_param``).
- ``args``: extra training options (after the recipe's, before ``--asr_args``).
- ``languages``: train and validate on these languages' utterances only: stage 11 writes subsets of
  the training and validation dirs (``<dir>_<langs>``, every per-utterance file filtered the same
  way, ``utt2category`` and ``lang_list.txt`` kept) and of the shape files
  (``<stats_dir>/subset_<langs>/``), each skipped when up to date. A phase with ``pruning_conf``
  (other than ``lap``, whose one mask is shared) also gets ``--pruning_conf languages=[...]``.
- ``foreach_language``: ``true`` expands the entry into one phase per language (of ``languages``
  if given, else of the recipe's language list), named ``<name>_<lang>`` with exp
  ``<exp>_<lang>`` and ``languages: [<lang>]``. The entry's ``name`` stays the group's name: a
  later phase may name the group in ``init_from`` / ``init_masks_from``; from inside another
  per-language group, ``<group>`` means ``<group>_<same lang>``.
- ``init_masks_from``: earlier pruning phases (or groups: all their phases) whose ``masks.pwm``
  become ``--pruning_conf init_masks=[...]`` (ESPnet's ``NestedDictAction`` merges this key into
  the config's ``pruning_conf``).
- ``seeds``: a list of training seeds; expands the entry (after ``foreach_language``) into one
  phase per seed, named ``<name>[_<lang>]_s<seed>`` with exp ``<exp>[_<lang>]_s<seed>`` and
  ``--seed <seed>``. A seeded phase naming a seeded group in ``init_from`` / ``init_masks_from``
  gets that group's phases of the same seed (and language); an unseeded phase (e.g. the dense θ0
  every row starts from) is shared by all seeds. Results tables show mean ± sd over the seeds.
- ``decode``: decode and score this phase in stages 12-13 (default: true for the last phase and
  for phases whose config has ``pruning_conf``). A phase with ``languages`` is decoded only on the
  test sets of those languages; every other phase on every test set. Each set is decoded with
  ``--lang <the set's language>``, which selects that language's pathway.

Each :class:`Phase` reads its config files once (:attr:`Phase.config_dict`); the stages ask it for
the pruning method, the ``--pruning_conf`` overrides and the batch options (:meth:`Phase.run_options`).
"""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from espnet_pathways.pruning.methods import PruningMethod, find_method
from espnet_pathways.utils.lang_list import LANG_LIST, read_lang_list
from espnet_pathways.utils.fileio import atomic_write_text

__all__ = [
    "Phase",
    "RunOptions",
    "ESPNET_DEFAULTS",
    "MASKS_FILE",
    "MERGED_CONFIG",
    "load_phases",
    "select_phases",
    "selected",
    "single_phase",
    "merge_configs",
    "init_mask_phases",
    "decoded_phases",
    "add_phases_arguments",
    "phases_from_args",
]

_KEYS = {"name", "config", "exp", "init_from", "args", "languages", "foreach_language", "init_masks_from", "decode",
         "seeds"}
MASKS_FILE = "masks.pwm"
MERGED_CONFIG = "phase_config.yaml"
# ESPnet's defaults of the training options read by :meth:`Phase.run_options`
ESPNET_DEFAULTS = {"batch_type": "folded", "batch_size": 20, "accum_grad": 1, "max_epoch": 40,
                   "num_iters_per_epoch": None}
_SIZED_BATCH_TYPES = ("folded", "sorted", "unsorted")  # batches of batch_size utterances (others fill batch_bins)


@dataclass(frozen=True)
class RunOptions:
    """The batch and schedule options a phase's training uses."""

    batch_type: str
    batch_size: Optional[int]  # utterances per batch; None: the batch type fills batch_bins
    accum_grad: int
    max_epoch: int
    num_iters_per_epoch: Optional[int]  # None: an epoch is a pass over the data


def _int_or_none(value: Any) -> Optional[int]:
    return None if value is None or str(value).lower() in ("none", "null") else int(value)


def _last_option(args: Sequence[str], key: str) -> Optional[str]:
    """The value of the last ``--key v`` / ``--key=v`` of ``args`` (None: not given)."""
    for i in range(len(args) - 1, -1, -1):
        if args[i] == f"--{key}" and i + 1 < len(args):
            return args[i + 1]
        if args[i].startswith(f"--{key}="):
            return args[i].split("=", 1)[1]
    return None


@dataclass(frozen=True)
class Phase:
    """One training run: ``config`` into ``exp_dir``, optionally initialised from an earlier phase.

    Its config files are read and merged once, on first use (:attr:`config_dict`); the pruning
    method, the ``--pruning_conf`` overrides and the batch options derive from that dict.

    Attributes:
        config: the file ESPnet gets (``<exp_dir>/phase_config.yaml`` when ``sources`` are merged).
        sources: the config files of the phases file, in merge order (empty: ``config`` itself).
        languages: train/valid on these languages only (empty: every language).
        init_masks_from: names of earlier phases whose masks initialise this one.
        decode: decode in stages 12-13 (None: the default rule, see :func:`decoded_phases`).
        group: the phases-file entry this phase comes from (``foreach_language`` and ``seeds`` give several).
        seed: the training seed of a ``seeds`` expansion (None: the config's).
        origin: where the phase is defined, for error messages.
    """

    name: str
    config: Path
    exp_dir: Path
    init_from: Optional[str] = None
    args: Tuple[str, ...] = ()
    sources: Tuple[Path, ...] = ()
    languages: Tuple[str, ...] = ()
    init_masks_from: Tuple[str, ...] = ()
    decode: Optional[bool] = None
    group: str = ""
    seed: Optional[int] = None
    origin: str = ""

    @property
    def base_config(self) -> Path:
        """The first config file (the model's): what stage 10 collects statistics with."""
        return self.sources[0] if self.sources else self.config

    @property
    def masks_file(self) -> Path:
        """Where a pruning run leaves its final masks."""
        return self.exp_dir / MASKS_FILE

    @property
    def label(self) -> str:
        return self.origin or f"phase {self.name!r}"

    @cached_property
    def config_dict(self) -> Dict[str, Any]:
        """The training config: the ``sources`` merged (:func:`merge_configs`), read once."""
        merged: Dict[str, Any] = {}
        for source in self.sources or (self.config,):
            merged = merge_configs(merged, _read_config(Path(source), self))
        return merged

    @property
    def pruning_conf(self) -> Mapping[str, Any]:
        """The config's ``pruning_conf`` (empty: dense training)."""
        conf = self.config_dict.get("pruning_conf") or {}
        if not isinstance(conf, Mapping):
            raise ValueError(f"{self.label}: pruning_conf must be a mapping, got {conf!r}")
        return conf

    @property
    def method_name(self) -> Optional[str]:
        """``pruning_conf.method`` (None: dense training)."""
        return self.pruning_conf.get("method")

    @property
    def method(self) -> Optional[PruningMethod]:
        """The traits of the pruning method (None: dense training, or a name ESPnet will refuse)."""
        return find_method(self.method_name)

    def run_options(self, extra: Sequence[str] = ()) -> RunOptions:
        """The batch and schedule options of a run with the phase's ``args`` then ``extra``: the last
        ``--key`` given, else the config's, else ESPnet's default."""
        args = list(self.args) + list(extra)

        def value(key: str) -> Any:
            given = _last_option(args, key)
            return self.config_dict.get(key, ESPNET_DEFAULTS[key]) if given is None else given

        kind = str(value("batch_type"))
        return RunOptions(
            batch_type=kind,
            batch_size=int(value("batch_size")) if kind in _SIZED_BATCH_TYPES else None,
            accum_grad=int(value("accum_grad")),
            max_epoch=int(value("max_epoch")),
            num_iters_per_epoch=_int_or_none(value("num_iters_per_epoch")),
        )

    def write_config(self) -> Path:
        """The config file ESPnet gets; for several ``sources``, ``<exp>/phase_config.yaml`` is
        (re)written from :attr:`config_dict` when its contents change."""
        conf = self.config_dict  # every source exists and is a mapping
        if len(self.sources) > 1:
            header = "".join([f"# Written by espnet_pathways.recipe.phases for phase {self.name}: merge of\n"]
                             + [f"#   {s}\n" for s in self.sources])
            text = header + yaml.safe_dump(conf, sort_keys=False, allow_unicode=True)
            if not self.config.is_file() or self.config.read_text(encoding="utf-8") != text:
                atomic_write_text(self.config, text)
        return self.config

    def pruning_args(self, phases: Sequence["Phase"]) -> List[str]:
        """``--pruning_conf`` overrides: ``init_masks`` from ``init_masks_from`` and ``languages``
        from ``languages`` (checked against the config's ``pruning_conf``)."""
        conf = self.pruning_conf
        out: List[str] = []
        if self.init_masks_from:
            if not conf:
                raise ValueError(f"{self.label}: init_masks_from needs a config with pruning_conf ({self.config})")
            if conf.get("init_masks"):
                raise ValueError(f"{self.label}: give init_masks in the config or init_masks_from in the phases file, not both")
            files = []
            for source in init_mask_phases(self, phases):
                if not source.masks_file.is_file():
                    raise FileNotFoundError(
                        f"{self.label}: init_masks_from: phase {source.name!r} left no {source.masks_file} "
                        "(is it a pruning phase, and did it finish?)"
                    )
                files.append(str(source.masks_file))
            out += ["--pruning_conf", "init_masks=" + json.dumps(files)]
        if not (self.languages and conf) or (self.method is not None and not self.method.per_language):
            return out  # LAP prunes one shared mask
        given = conf.get("languages")
        if isinstance(given, str):
            given = [given]
        if given is not None and list(given) != list(self.languages):
            raise ValueError(
                f"{self.label}: languages {list(self.languages)} differ from pruning_conf.languages {given} "
                f"of {self.config}"
            )
        return out + ["--pruning_conf", "languages=" + json.dumps(list(self.languages))]


def single_phase(train_config: Path, asr_exp: Path) -> List[Phase]:
    """The phase list when no phases file is given."""
    return [Phase(name="train", config=Path(train_config), exp_dir=Path(asr_exp), group="train")]


def _field(entry: dict, key: str, where: str, kind: type) -> Any:
    if key not in entry:
        raise ValueError(f"{where}: missing key {key!r}")
    value = entry[key]
    if not isinstance(value, kind) or value == "":
        raise ValueError(f"{where}: {key!r} must be a non-empty {kind.__name__}, got {value!r}")
    return value


def _names(entry: dict, key: str, where: str) -> List[str]:
    """A string or a non-empty list of unique non-empty strings."""
    value = entry.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v and not any(c.isspace() for c in v) for v in value)
    ):
        raise ValueError(f"{where}: {key!r} must be a name or a non-empty list of names, got {entry[key]!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"{where}: {key!r} repeats a name: {value}")
    return list(value)


def _optional_bool(entry: dict, key: str, where: str) -> Optional[bool]:
    value = entry.get(key)
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{where}: {key!r} must be true or false, got {value!r}")
    return value


def _seeds(entry: dict, where: str) -> List[int]:
    """The entry's ``seeds``: a non-empty list of distinct non-negative integers (empty: none given)."""
    value = entry.get("seeds")
    if value is None:
        return []
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        raise ValueError(f"{where}: 'seeds' must be a non-empty list of non-negative integers, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"{where}: 'seeds' repeats a seed: {value}")
    return list(value)


def _configs(entry: dict, where: str) -> List[Path]:
    value = entry.get("config")
    if isinstance(value, str) and value:
        return [Path(value)]
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return [Path(v) for v in value]
    if "config" not in entry:
        raise ValueError(f"{where}: missing key 'config'")
    raise ValueError(f"{where}: 'config' must be a file name or a non-empty list of file names, got {value!r}")


class _Resolver:
    """Resolves phase and group names among the phases defined so far."""

    def __init__(self) -> None:
        self.phases: List[Phase] = []
        self.groups: Dict[str, List[Phase]] = {}
        self.all_names: set = set()

    def resolve(self, ref: str, key: str, where: str, lang: Optional[str], seed: Optional[int], one: bool,
                current: str) -> List[str]:
        """Phase names for ``ref``: the phase itself, or the group's phases of ``lang`` and ``seed``
        where the group has such phases."""
        if ref == current:
            raise ValueError(f"{where}: {key} {ref!r} names the phase itself")
        if any(p.name == ref for p in self.phases):
            return [ref]
        group = self.groups.get(ref)
        if not group:
            later = ref in self.all_names
            raise ValueError(
                f"{where}: {key} {ref!r} is not an earlier phase"
                + (" (it is defined later; phases run in file order)" if later else "")
            )
        for wanted, of in ((lang, lambda p: p.languages[0] if len(p.languages) == 1 else None),
                           (seed, lambda p: p.seed)):
            same = [p for p in group if wanted is not None and of(p) == wanted]
            group = same or group
        members = [p.name for p in group]
        if one and len(members) != 1:
            raise ValueError(
                f"{where}: {key} {ref!r} names {len(members)} phases ({', '.join(members)}); name one of them"
            )
        return list(members)


def load_phases(path: Path, expdir: Path, langs: Optional[Sequence[str]] = None) -> List[Phase]:
    """Read and check a phases file, expanding ``foreach_language`` entries.

    Args:
        langs: the recipe's languages (``lang_list.txt``); needed by ``foreach_language`` without
            ``languages``, and used to check every ``languages`` entry. None: not checked.

    Raises:
        ValueError: naming the file, the entry and the key (unknown key, bad value, a name used
            twice, ``init_from`` / ``init_masks_from`` naming no earlier phase, unknown language).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing phases file: {path}")
    with path.open(encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("phases"), list) or not doc["phases"]:
        raise ValueError(f"{path}: expected a non-empty list under 'phases'")
    entries = doc["phases"]
    res = _Resolver()
    res.all_names = {e.get("name") for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)}
    for i, entry in enumerate(entries):
        where = f"{path}: phases[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a mapping, got {entry!r}")
        unknown = sorted(set(entry) - _KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; allowed {sorted(_KEYS)}")
        name = _field(entry, "name", where, str)
        where = f"{where} ({name})"
        if any(c.isspace() or c == "/" for c in name):
            raise ValueError(f"{where}: 'name' must not contain spaces or '/', got {name!r}")
        configs = _configs(entry, where)
        exp = _field(entry, "exp", where, str)
        init_from = entry.get("init_from")
        if init_from is not None and (not isinstance(init_from, str) or not init_from):
            raise ValueError(f"{where}: 'init_from' must be a phase name, got {init_from!r}")
        args = entry.get("args", [])
        if not isinstance(args, list) or not all(isinstance(a, (str, int, float)) for a in args):
            raise ValueError(f"{where}: 'args' must be a list of strings")
        languages = _names(entry, "languages", where)
        if langs is not None:
            for lang in languages:
                if lang not in langs:
                    raise ValueError(f"{where}: languages: {lang!r} is not in the language list {list(langs)}")
        masks_from = _names(entry, "init_masks_from", where)
        decode = _optional_bool(entry, "decode", where)
        foreach = _optional_bool(entry, "foreach_language", where) or False
        seeds = _seeds(entry, where)
        if name in res.groups or any(p.name == name for p in res.phases):
            raise ValueError(f"{where}: phase name {name!r} used twice")
        if foreach:
            loop = languages or (list(langs) if langs is not None else None)
            if not loop:
                raise ValueError(f"{where}: foreach_language needs 'languages' or the recipe's language list")
            expanded = [(f"{name}_{lang}", f"{exp}_{lang}", (lang,), lang) for lang in loop]
        else:
            expanded = [(name, exp, tuple(languages), None)]
        expanded = [
            (n if seed is None else f"{n}_s{seed}", e if seed is None else f"{e}_s{seed}", ls, lang, seed)
            for n, e, ls, lang in expanded
            for seed in (seeds or [None])
        ]
        new: List[Phase] = []
        for phase_name, phase_exp, phase_langs, lang, seed in expanded:
            tags = [t for t in (lang, None if seed is None else f"seed {seed}") if t is not None]
            phase_where = f"{where} [{', '.join(tags)}]" if tags else where
            exp_dir = Path(expdir) / phase_exp
            if any(p.name == phase_name for p in res.phases + new) or phase_name in res.groups:
                raise ValueError(f"{phase_where}: phase name {phase_name!r} used twice")
            if any(p.exp_dir == exp_dir for p in res.phases + new):
                raise ValueError(f"{phase_where}: experiment dir {exp_dir} used by an earlier phase")
            source = None
            if init_from is not None:
                source = res.resolve(init_from, "init_from", phase_where, lang, seed, one=True, current=name)[0]
            masks: List[str] = []
            for ref in masks_from:
                for resolved in res.resolve(ref, "init_masks_from", phase_where, lang, seed, one=False, current=name):
                    if resolved not in masks:
                        masks.append(resolved)
            merged = len(configs) > 1
            new.append(
                Phase(
                    name=phase_name,
                    config=exp_dir / MERGED_CONFIG if merged else configs[0],
                    exp_dir=exp_dir,
                    init_from=source,
                    args=tuple(str(a) for a in args) + (() if seed is None else ("--seed", str(seed))),
                    sources=tuple(configs),
                    languages=phase_langs,
                    init_masks_from=tuple(masks),
                    decode=decode,
                    group=name,
                    seed=seed,
                    origin=phase_where,
                )
            )
        res.phases.extend(new)
        res.groups[name] = new
    return res.phases


def select_phases(
    phases: Sequence[Phase], seeds: Optional[Sequence[int]] = None, groups: Optional[Sequence[str]] = None,
) -> List[Phase]:
    """The phases of the given ``seeds`` (unseeded phases always) and entries (``groups``), with
    every phase they start from or take masks from, in file order. None: no filter on that key.

    Lets a long phases file run a part at a time (e.g. seed 1 of the key rows first); phases
    already done are skipped by the stages as usual.

    Raises:
        ValueError: a seed or entry name that no phase has.
    """
    known_seeds = {p.seed for p in phases if p.seed is not None}
    known_groups = {p.group for p in phases}
    for seed in seeds or ():
        if seed not in known_seeds:
            raise ValueError(f"--seeds: no phase has seed {seed} (seeds: {sorted(known_seeds)})")
    for group in groups or ():
        if group not in known_groups:
            raise ValueError(f"--groups: no phases-file entry is named {group!r} (entries: {sorted(known_groups)})")
    by_name = {p.name: p for p in phases}
    keep = set()

    def add(phase: Phase) -> None:
        if phase.name in keep:
            return
        keep.add(phase.name)
        for name in ((phase.init_from,) if phase.init_from else ()) + tuple(phase.init_masks_from):
            add(by_name[name])

    for phase in phases:
        if (seeds is None or phase.seed is None or phase.seed in seeds) and (groups is None or phase.group in groups):
            add(phase)
    return [p for p in phases if p.name in keep]


# ---------------------------------------------------------------- configs


def merge_configs(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> Dict[str, Any]:
    """``overlay`` on ``base``: mappings merge recursively, other values of ``overlay`` replace."""
    out = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_configs(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_config(path: Path, phase: Phase) -> Dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{phase.label}: missing config {path}")
    with path.open(encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a YAML mapping (config of {phase.label})")
    return doc


# ---------------------------------------------------------------- training options


def init_mask_phases(phase: Phase, phases: Sequence[Phase]) -> List[Phase]:
    """The phases named by ``phase.init_masks_from``."""
    by_name = {p.name: p for p in phases}
    return [by_name[name] for name in phase.init_masks_from]


# ---------------------------------------------------------------- decoding


def decoded_phases(phases: Sequence[Phase]) -> List[Phase]:
    """The phases stages 12-13 decode: ``decode: true``, or by default the last phase and every
    phase whose config has ``pruning_conf``."""
    out = []
    for i, phase in enumerate(phases):
        decode = phase.decode
        if decode is None:
            decode = i == len(phases) - 1 or phase.method_name is not None
        if decode:
            out.append(phase)
    return out


# ---------------------------------------------------------------- options of the stages


def add_phases_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every phases CLI takes: the phases file (or one config and its exp dir), the exp
    dir, the languages and ``--seeds`` / ``--groups`` (a part of a phases file, :func:`select_phases`)."""
    parser.add_argument("--phases_config", type=Path, default=None, help="YAML list of phases")
    parser.add_argument("--train_config", type=Path, default=None, help="or one phase: this config ...")
    parser.add_argument("--asr_exp", type=Path, default=None, help="... into this exp dir")
    parser.add_argument("--expdir", type=Path, default=Path("exp"), help="root of the phases' exp dirs")
    parser.add_argument("--langs", default=None, help="the recipe's languages (foreach_language, column order)")
    parser.add_argument("--lang_list", type=Path, default=None, help=f"or a {LANG_LIST}")
    parser.add_argument("--seeds", default="", help="only these seeds' phases (and unseeded ones), e.g. \"1 2\"")
    parser.add_argument("--groups", default="", help="only these entries' phases (and what they start from)")


def selected(phases: Sequence[Phase], args: argparse.Namespace) -> List[Phase]:
    """:func:`select_phases` with the options of :func:`add_phases_arguments` ("" = all)."""
    words = args.seeds.split()
    bad = [w for w in words if not w.isdigit()]
    if bad:
        raise ValueError(f"--seeds: expected non-negative integers, got {bad[0]!r}")
    seeds = [int(w) for w in words] or None
    return select_phases(phases, seeds, args.groups.split() or None)


def phases_from_args(args: argparse.Namespace) -> Tuple[Optional[List[str]], List[Phase]]:
    """(languages, phases) from the options of :func:`add_phases_arguments`."""
    langs = args.langs.split() if args.langs else None
    if args.lang_list is not None:
        langs = read_lang_list(args.lang_list)
    if args.phases_config is not None:
        phases = load_phases(args.phases_config, args.expdir, langs)
    elif args.train_config is not None and args.asr_exp is not None:
        phases = single_phase(args.train_config, args.asr_exp)
    else:
        raise ValueError("give --phases_config, or --train_config and --asr_exp")
    return langs, selected(phases, args)
