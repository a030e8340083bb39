"""Run NIST sclite (Debian ``sctk``) on trn files and parse its ``result.txt``.

``-o all`` makes the report hold the per-speaker tables (``Sum/Avg`` and ``Sum`` rows: see
:func:`parse_result`) and the alignment dump, one block per utterance::

    id: (s1-s1_u1)
    Scores: (#C #S #D #I) 4 1 1 0

which :func:`parse_utterances` reads.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from espnet_pathways.utils.fileio import atomic_path

__all__ = ["ScliteSummary", "find_sclite", "run_sclite", "parse_result", "parse_utterances"]

_DEBIAN_SCLITE = "/usr/lib/sctk/bin/sclite"


@dataclass(frozen=True)
class ScliteSummary:
    """The ``Sum/Avg`` row of sclite's report.

    Attributes:
        snt, wrd: sentences and reference tokens.
        corr, sub, dele, ins, err, serr: percentages (as printed by sclite).
        n_corr, n_sub, n_del, n_ins, n_err, n_serr: counts (from the ``Sum`` row).
    """

    snt: int
    wrd: int
    corr: float
    sub: float
    dele: float
    ins: float
    err: float
    serr: float
    n_corr: int
    n_sub: int
    n_del: int
    n_ins: int
    n_err: int
    n_serr: int


def find_sclite(sclite: Optional[str] = None) -> str:
    """The sclite executable: ``sclite`` argument, then ``$PATH``, then Debian's location."""
    for candidate in ([sclite] if sclite else []) + [shutil.which("sclite") or "", _DEBIAN_SCLITE]:
        if candidate and Path(candidate).is_file():
            return candidate
    raise FileNotFoundError(
        f"sclite not found ({sclite or 'not given'}, $PATH, {_DEBIAN_SCLITE}); install the Debian package sctk"
    )


def run_sclite(ref_trn: Path, hyp_trn: Path, result: Path, sclite: str) -> None:
    """``sclite -r ref trn -h hyp trn -i rm -o all stdout > result`` (written atomically)."""
    cmd = [sclite, "-r", str(ref_trn), "trn", "-h", str(hyp_trn), "trn", "-i", "rm", "-o", "all", "stdout"]
    with atomic_path(result) as tmp:
        with tmp.open("w", encoding="utf-8") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"sclite failed ({proc.returncode}) on {hyp_trn}: {proc.stderr.strip()[-500:]}")
        parse_result(tmp)  # a report without a summary is a failure too


def _row(text: str, label: str, path: Path) -> List[str]:
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] == label:
            return cells[1].split() + cells[2].split()
    raise ValueError(f"{path}: no '{label}' row; not an sclite report made with -o all")


def parse_result(path: Path) -> ScliteSummary:
    """Parse the ``Sum/Avg`` (percentages) and ``Sum`` (counts) rows of ``result.txt``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing sclite report: {path}")
    text = path.read_text(encoding="utf-8", errors="replace")
    pct, cnt = _row(text, "Sum/Avg", path), _row(text, "Sum", path)
    if len(pct) != 8 or len(cnt) != 8:
        raise ValueError(f"{path}: expected 8 numbers in the Sum/Avg and Sum rows, got {pct} and {cnt}")
    try:
        return ScliteSummary(
            int(pct[0]), int(pct[1]), *map(float, pct[2:]), *(int(float(c)) for c in cnt[2:])
        )
    except ValueError:
        raise ValueError(f"{path}: non-numeric summary {pct} / {cnt}") from None


_ID = re.compile(r"id: \((?P<id>[^)]+)\)")
_SCORES = re.compile(r"Scores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)")


def parse_utterances(path: Path) -> Dict[str, Tuple[int, int, int, int]]:
    """Per-utterance ``(#C, #S, #D, #I)`` from the alignment dump of a ``-o all`` report.

    Keys are the trn ids without the speaker (``s1-s1_u1`` -> ``s1_u1``). Errors are S + D + I and
    reference tokens C + S + D; their sums are checked against the report's ``Sum`` row.
    Raises ``ValueError`` naming ``path`` when the dump is missing, malformed or disagrees with it.
    """
    path = Path(path)
    total = parse_result(path)
    out: Dict[str, Tuple[int, int, int, int]] = {}
    pending: Optional[str] = None
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            match = _ID.match(line.strip())
            if match is not None:
                if pending is not None:
                    raise ValueError(f"{path}:{number}: utterance {pending!r} has no Scores line")
                pending = match["id"].split("-", 1)[-1]
                if pending in out:
                    raise ValueError(f"{path}:{number}: utterance {pending!r} appears twice")
                continue
            match = _SCORES.match(line.strip())
            if match is not None:
                if pending is None:
                    raise ValueError(f"{path}:{number}: Scores line without an id line")
                out[pending] = tuple(int(g) for g in match.groups())  # type: ignore[assignment]
                pending = None
    if pending is not None:
        raise ValueError(f"{path}: utterance {pending!r} has no Scores line")
    if not out:
        raise ValueError(f"{path}: no per-utterance alignment ('id:'/'Scores:' lines); not made with -o all")
    errors = sum(s + d + i for _, s, d, i in out.values())
    words = sum(c + s + d for c, s, d, _ in out.values())
    if (len(out), words, errors) != (total.snt, total.wrd, total.n_err):
        raise ValueError(
            f"{path}: the alignment dump ({len(out)} utterances, {words} words, {errors} errors) "
            f"disagrees with the Sum row ({total.snt}, {total.wrd}, {total.n_err})"
        )
    return out
