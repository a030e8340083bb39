"""Report of adding a language (``local/extend.sh``'s last step): what each extension run did to the
languages the model already had, and how well it learned the new one.

Usage::

    python -m espnet_pathways.recipe.stages.extend_report \
        --base exp/asr_dynamic_pathways_lap/decode_x \
        --run frozen exp/asr_extend_es_frozen/decode_x --run adapting exp/asr_extend_es_adapting/decode_x \
        --base_langs "en fr it nl" --lang es --out exp/extend_es/REPORT.md

For every existing language's test set (``mls_<lang>_test``, scored by stage 13): the base model's
WER, each run's WER, the change (run − base, percentage points) with its paired-bootstrap 95%
interval over the set's utterances (:mod:`~espnet_pathways.recipe.stages.significance`), and the
share of utterances whose hypothesis is identical to the base model's (``freeze_existing: true``
must give 100%). For the new language: each run's WER, and the share of its pathway that no
existing pathway keeps (read from ``<decode dir>/../masks.pwm``): under ``freeze_existing: true``
only that share of its masked weights can train. Markdown to ``--out``, JSON beside it
(same name, ``.json``), both written atomically.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_pathways.data.kaldi import read_kaldi_file
from espnet_pathways.masks import MaskSet
from espnet_pathways.recipe.stages.significance import (
    AVERAGE,
    compare_systems,
    find_results,
    load_system,
    read_set_scores,
)
from espnet_pathways.utils.cli import run_cli
from espnet_pathways.utils.fileio import atomic_write_text

__all__ = ["lang_test_set", "identical_share", "own_share", "extend_report", "report_markdown", "write_extend_report", "main"]

BASE = "base"


def lang_test_set(lang: str) -> str:
    return f"mls_{lang}_test"


def identical_share(decode_a: Path, decode_b: Path, set_name: str) -> float:
    """Share (0-1) of ``set_name``'s utterances whose hypothesis (``<decode>/<set>/text``) is the same in both."""
    a = read_kaldi_file(Path(decode_a) / set_name / "text", allow_empty=True)
    b = read_kaldi_file(Path(decode_b) / set_name / "text", allow_empty=True)
    if set(a) != set(b):
        raise ValueError(f"{decode_b}/{set_name}/text: utterances differ from {decode_a}/{set_name}/text")
    return sum(a[k].split() == b[k].split() for k in a) / max(len(a), 1)


def own_share(masks: MaskSet, lang: str, base_langs: Sequence[str]) -> float:
    """Share (0-1) of ``lang``'s kept weights that none of ``base_langs`` keeps."""
    existing = masks.union(base_langs)
    own = sum(int((keep & ~existing[name]).sum()) for name, keep in masks[lang].items())
    return own / max(masks.kept(lang), 1)


def extend_report(
    base: Path, runs: Sequence[Tuple[str, Path]], base_langs: Sequence[str], lang: str, num_resamples: int = 1000
) -> Dict[str, object]:
    """Compare each run with the base model on ``base_langs`` and score it on ``lang``.

    Returns:
        ``{"new_lang", "base_langs", "num_resamples", "existing": compare_systems(...) report (systems
        runs..., base), "identical": {run: {set: share}}, "new": {run: {"set", "wer", "own_share", "masks"}}}``.
    """
    if not runs:
        raise ValueError("give at least one --run")
    if lang in base_langs:
        raise ValueError(f"--lang {lang!r} is one of --base_langs {list(base_langs)}: not a new language")
    sets = [lang_test_set(l) for l in base_langs]
    base_scores = load_system(BASE, [base], test_sets=sets)
    systems = [load_system(name, [directory], test_sets=sets, like=base_scores) for name, directory in runs]
    new_set = lang_test_set(lang)
    new: Dict[str, Dict[str, object]] = {}
    for name, directory in runs:
        found = find_results(Path(directory))
        if new_set not in found:
            raise FileNotFoundError(f"run {name!r}: {directory} has no scored set {new_set!r} (stage 13 not run?)")
        masks_file = Path(directory).parent / "masks.pwm"
        new[name] = {"set": new_set, "wer": read_set_scores(found[new_set]).wer,
                     "own_share": own_share(MaskSet.load(masks_file), lang, base_langs), "masks": str(masks_file)}
    return {
        "new_lang": lang,
        "base_langs": list(base_langs),
        "num_resamples": num_resamples,
        "existing": compare_systems([*systems, base_scores], num_resamples=num_resamples),
        "identical": {name: {s: identical_share(base, directory, s) for s in sets} for name, directory in runs},
        "new": new,
    }


def report_markdown(report: Dict[str, object]) -> str:
    """Two tables: the existing languages (WER, change vs base with interval, identical hypotheses), the new one."""
    existing = report["existing"]
    wer = {name: cell["wer"] for name, cell in existing["systems"].items()}
    runs = [name for name in existing["systems"] if name != BASE]
    diffs = {c["a"]: c["diff"] for c in existing["comparisons"] if c["b"] == BASE}
    sets = list(existing["sets"])
    head = "|test set|words|base WER|" + "|".join(f"{r} WER|{r} − base [95%]|{r}: identical hyps" for r in runs) + "|"
    lines = [
        f"## Adding {report['new_lang']} to a model of {', '.join(report['base_langs'])}",
        "",
        f"### Existing languages (paired bootstrap over utterances, {report['num_resamples']} resamples)",
        "",
        head,
        "|---|---:|---:|" + "---:|---|---:|" * len(runs),
    ]
    for key in sets + [AVERAGE]:
        words = str(existing["sets"][key]["words"]) if key in existing["sets"] else ""
        cells = [f"{key}|{words}|{wer[BASE][key]['mean']:.2f}"]
        for run in runs:
            d = diffs[run][key]
            same = report["identical"][run]
            share = sum(same.values()) / len(same) if key == AVERAGE else same[key]
            cells.append(f"{wer[run][key]['mean']:.2f}|{d['diff']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]|{100 * share:.1f}%")
        lines.append("|" + "|".join(cells) + "|")
    lines += ["", f"### New language: {report['new_lang']}", "",
              "|run|test set|WER|its pathway outside the existing ones (trainable if frozen)|", "|---|---|---:|---:|"]
    lines += [f"|{run}|{cell['set']}|{cell['wer']:.2f}|{100 * cell['own_share']:.2f}%|" for run, cell in report["new"].items()]
    return "\n".join(lines) + "\n"


def write_extend_report(report: Dict[str, object], out: Path) -> None:
    """``out`` (markdown) and ``out`` with suffix ``.json``, each atomically."""
    atomic_write_text(Path(out).with_suffix(".json"), json.dumps(report, indent=1) + "\n")
    atomic_write_text(Path(out), report_markdown(report))


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="decode dir of the model the language was added to")
    parser.add_argument("--run", nargs=2, action="append", required=True, metavar=("NAME", "DECODE_DIR"),
                        help="an extension run's name and decode dir (give it once per run)")
    parser.add_argument("--base_langs", required=True, help="space-separated existing languages")
    parser.add_argument("--lang", required=True, help="the added language")
    parser.add_argument("--out", type=Path, required=True, help="markdown report (JSON beside it)")
    parser.add_argument("--num_resamples", type=int, default=1000)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)

    def work() -> None:
        report = extend_report(args.base, [(n, Path(d)) for n, d in args.run], args.base_langs.split(), args.lang,
                               args.num_resamples)
        write_extend_report(report, args.out)
        print(report_markdown(report), end="")

    return run_cli(work)


if __name__ == "__main__":
    raise SystemExit(main())
