"""The combined ``<expdir>/RESULTS.md`` of a phases file, in the style of the papers' Table 1.

One row per phases-file entry (a ``foreach_language`` entry combines its per-language models into
one row: each language's WER comes from that language's model), one table per kind of test set
(``mls_*_test``, ``mls_*_dev``), columns: the pruning method and its initial masks, whether the
mask can change during training, the training data, the WER (%) of each language and their
average (macro, as the papers' "Avg."), the pathway sparsity (the decoded language's own mask from
the checkpoint, over the prunable set and over all parameters, averaged over the row's
languages) and the command that produced the scores. An entry with ``seeds`` is one row: each
cell is the mean ± sample sd over its seeds (the average column: over the per-seed averages), and
the row names its number of seeds. A sparsity off the phase's
``pruning_conf.target_sparsity`` (e.g. a run that ended before its pruning schedule) is marked,
with a footnote.

Built from each decoded phase's ``<exp>/decode_<tag>/{scoring.json,decode_info.json}`` (stages
12-13), its ``config.yaml`` and the decoded checkpoint's masks; stage 13 writes it
(:mod:`espnet_pathways.recipe.stages.phase_eval`).
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

from espnet_pathways.masks import MaskSet
from espnet_pathways.pruning.methods import find_method
from espnet_pathways.recipe.mask_report import PathwaySparsity, checkpoint_masks, pathway_sparsity, percent
from espnet_pathways.recipe.phases import Phase, decoded_phases
from espnet_pathways.recipe.stages.results import (
    DECODE_INFO_JSON,
    OFF_TARGET,
    SCORING_JSON,
    checkpoint_stats,
    load_json,
    off_target,
    off_target_footnote,
    sparsity_target,
)
from espnet_pathways.utils.fileio import atomic_write_text

__all__ = [
    "PhaseScores", "read_phase_scores", "set_kind", "mean_sd", "seeds_label", "results_table", "write_results_table",
]


@dataclass
class PhaseScores:
    """What the table needs from one decoded phase."""

    phase: Phase
    method: Optional[str]  # pruning_conf.method of the trained model (None: dense)
    command: str
    wer: Dict[str, Tuple[str, float]] = field(default_factory=dict)  # set -> (lang, WER %)
    sparsity: Dict[str, PathwaySparsity] = field(default_factory=dict)  # lang -> its pathway
    total_params: int = 0
    target: Optional[float] = None  # pruning_conf.target_sparsity (None: dense, fixed pathways)
    masks: Optional[MaskSet] = None  # the decoded checkpoint's masks (None: dense)

    def missed_target(self, lang: str) -> bool:
        """Whether ``lang``'s pathway is off :attr:`target` (:func:`off_target`)."""
        return lang in self.sparsity and off_target(self.sparsity[lang].sparsity, self.target)


def read_phase_scores(phase: Phase, decode_dir: Path) -> PhaseScores:
    """Scores, method and mask sparsity of one decoded phase."""
    scoring = load_json(decode_dir / SCORING_JSON)
    info = load_json(decode_dir / DECODE_INFO_JSON)
    config_path = Path(info.get("train_config") or phase.exp_dir / "config.yaml")
    config = {}
    if config_path.is_file():
        with config_path.open(encoding="utf-8") as f:
            config = yaml.safe_load(f) or {}
    conf = config.get("pruning_conf") or {}
    method = conf.get("method") if isinstance(conf, dict) else None
    out = PhaseScores(phase=phase, method=method, command=scoring.get("command") or "", target=sparsity_target(config))
    for name, entry in scoring.get("sets", {}).items():
        w = entry["wer"]
        out.wer[name] = (entry["lang"], 100.0 * w["n_err"] / max(w["wrd"], 1))
    model_file = Path(info["model_file"])
    out.total_params = int(checkpoint_stats(model_file)["params"])
    masks = out.masks = checkpoint_masks(model_file)
    if masks is not None:
        langs = [lang for lang, _ in out.wer.values()]
        out.sparsity = {r.name: r for r in pathway_sparsity(masks, langs, out.total_params) if r.name != "union"}
    return out


def set_kind(name: str, lang: str) -> str:
    """``mls_fr_test`` -> ``mls_*_test`` (the set's name with its language replaced by ``*``)."""
    parts = name.split("_")
    return "_".join("*" if p == lang else p for p in parts) if lang in parts else name


def _data_label(phases: Sequence[Phase]) -> str:
    if len(phases) > 1 and all(len(p.languages) == 1 for p in phases):
        return "monolingual"
    langs = phases[0].languages
    if not langs:
        return "multilingual"
    return f"monolingual ({langs[0]})" if len(langs) == 1 else "+".join(langs)


def _row_info(group: str, members: List[PhaseScores], phases: Sequence[Phase]) -> Dict[str, str]:
    by_name = {p.name: p for p in phases}
    methods = list(dict.fromkeys(m.method or "dense" for m in members))
    init_groups = list(
        dict.fromkeys(by_name[n].group for m in members for n in m.phase.init_masks_from if n in by_name)
    )
    if all(m.method is None for m in members):
        change = "/"
    else:
        specs = [find_method(m.method) for m in members]  # adaptive: the masks change during training
        change = "yes" if any(s is not None and s.adaptive for s in specs) else "no"
    return {
        "method": ", ".join(methods),
        "init": ", ".join(init_groups) or "-",
        "change": change,
        "data": _data_label([p for p in phases if (p.group or p.name) == group]),
        "command": next((f"`{m.command}`" for m in members if m.command), "-"),
    }


Cell = Tuple[float, Optional[PathwaySparsity], Optional[float]]


def seeds_label(n: int) -> str:
    """``1 seed``, ``3 seeds``."""
    return f"{n} seed" + ("s" if n != 1 else "")


def mean_sd(values: Sequence[float]) -> str:
    """``12.34`` for one value, ``12.34 ± 0.56`` (sample sd) for several."""
    mean = sum(values) / len(values)
    return f"{mean:.2f}" if len(values) == 1 else f"{mean:.2f} ± {statistics.stdev(values):.2f}"


def results_table(
    phases: Sequence[Phase],
    inference_tag: str,
    langs: Optional[Sequence[str]] = None,
    title: str = "",
) -> str:
    """The markdown text of the combined results of ``phases`` (decoded and scored ones)."""
    groups: Dict[str, List[PhaseScores]] = {}
    for phase in decoded_phases(phases):
        decode_dir = phase.exp_dir / f"decode_{inference_tag}"
        if not (decode_dir / SCORING_JSON).is_file():
            logging.warning("phase %s: no %s; left out of the table", phase.name, decode_dir / SCORING_JSON)
            continue
        groups.setdefault(phase.group or phase.name, []).append(read_phase_scores(phase, decode_dir))
    if not groups:
        raise FileNotFoundError(f"no decoded phase has decode_{inference_tag}/{SCORING_JSON} (run stages 12-13)")

    # kind of set -> group -> lang -> seed -> (WER, sparsity or None, the target its sparsity misses or None)
    kinds: Dict[str, Dict[str, Dict[str, Dict[Optional[int], Cell]]]] = {}
    for group, members in groups.items():
        for m in members:
            for name, (lang, wer) in m.wer.items():
                cell = kinds.setdefault(set_kind(name, lang), {}).setdefault(group, {}).setdefault(lang, {})
                if m.phase.seed in cell:
                    raise ValueError(
                        f"phase group {group!r}: two phases decoded language {lang!r} of {set_kind(name, lang)}"
                    )
                cell[m.phase.seed] = (wer, m.sparsity.get(lang), m.target if m.missed_target(lang) else None)
    order = list(langs or [])
    lines = ["<!-- Generated by espnet_pathways.recipe.stages.phase_results -->", f"# RESULTS{': ' + title if title else ''}", ""]
    lines += [
        "WER (%) per language of each phase (a per-language entry, `foreach_language`, combines its",
        "per-language models into one row); sparsity of the decoded language's own pathway (mask of the",
        "checkpoint), over the prunable weights and over all parameters, averaged over the row's languages.",
    ]
    info = {group: _row_info(group, members, phases) for group, members in groups.items()}
    for kind, rows in kinds.items():
        present = {lang for cells in rows.values() for lang in cells}
        columns = [l for l in order if l in present] + sorted(present - set(order))
        lines += [
            "",
            f"## WER on {kind}",
            "",
            "|phase|method|init masks|mask can change?|training data|"
            + "|".join(c.upper() for c in columns)
            + "|Avg.|sparsity (prunable)|sparsity (all params)|command|",
            "|---|---|---|---|---|" + "---:|" * len(columns) + "---:|---:|---:|---|",
        ]
        missed: Dict[str, float] = {}  # group -> the target a pathway of the row misses
        for group, cells in rows.items():
            row = info[group]
            wers = [mean_sd([v[0] for v in cells[c].values()]) if c in cells else "-" for c in columns]
            seeds = sorted({seed for by_seed in cells.values() for seed in by_seed}, key=lambda x: (x is None, x))
            per_seed = [[by_seed[seed][0] for by_seed in cells.values() if seed in by_seed] for seed in seeds]
            avg = mean_sd([sum(ws) / len(ws) for ws in per_seed])
            partial = "*" if len(cells) < len(columns) else ""
            values = [v for by_seed in cells.values() for v in by_seed.values()]
            pathways = [v[1] for v in values if v[1] is not None]
            if pathways:
                sp = percent(sum(p.sparsity for p in pathways) / len(pathways))
                sp_all = percent(sum(p.sparsity_all for p in pathways) / len(pathways))
            else:
                sp = sp_all = percent(0.0)
            targets = [v[2] for v in values if v[2] is not None]
            if targets:
                missed[group] = targets[0]
            mark = f" {OFF_TARGET}" if targets else ""
            label = group if seeds == [None] else f"{group} ({seeds_label(len(seeds))})"
            lines.append(
                f"|{label}|{row['method']}|{row['init']}|{row['change']}|{row['data']}|"
                + "|".join(wers)
                + f"|{avg}{partial}|{sp}{mark}|{sp_all}{mark}|{row['command']}|"
            )
        if any(len(cells) < len(columns) for cells in rows.values()):
            lines += ["", "\\* average over the row's languages only."]
        if missed:
            lines += ["", off_target_footnote(missed)]
    lines += ["", "## Phases", "", "|phase|experiment dir(s)|", "|---|---|"]
    for group, members in groups.items():
        lines.append(f"|{group}|" + ", ".join(f"`{m.phase.exp_dir}`" for m in members) + "|")
    return "\n".join(lines) + "\n"


def write_results_table(
    phases: Sequence[Phase],
    expdir: Path,
    inference_tag: str,
    langs: Optional[Sequence[str]] = None,
    title: str = "",
) -> Path:
    """Write ``<expdir>/RESULTS.md`` atomically and return its path."""
    path = Path(expdir) / "RESULTS.md"
    atomic_write_text(path, results_table(phases, inference_tag, langs, title))
    return path

