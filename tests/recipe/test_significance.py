"""Per-utterance scores from sclite reports, the paired bootstrap and the significance CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Dict, Sequence

import numpy as np
import pytest

from espnet_pathways.recipe.stages import significance as sig
from espnet_pathways.recipe.sclite import find_sclite, parse_result, parse_utterances, run_sclite

# (reference, hypothesis) per utterance; errors and reference words counted by hand
SMALL = {
    "s1_u1": ("the cat sat on the mat", "the cat sit on mat"),  # 1 sub + 1 del of 6 words
    "s1_u2": ("hello world", "hello big world"),  # 1 ins of 2
    "s2_u3": ("a b c", ""),  # 3 del of 3
    "s2_u4": ("", "foo"),  # 1 ins of 0
    "s2_u5": ("one two", "one two"),  # correct
}
SMALL_ERRORS = {"s1_u1": 2, "s1_u2": 1, "s2_u3": 3, "s2_u4": 1, "s2_u5": 0}
SMALL_WORDS = {"s1_u1": 6, "s1_u2": 2, "s2_u3": 3, "s2_u4": 0, "s2_u5": 2}


def _trn(path: Path, texts: Dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{texts[k]}\t({k.split('_')[0]}-{k})\n" for k in sorted(texts)), encoding="utf-8")
    return path


def _score(score_dir: Path, pairs: Dict[str, tuple]) -> Path:
    """Run the real sclite as stage 13 does; return ``score_dir/result.txt``."""
    ref = _trn(score_dir / "ref.trn", {k: r for k, (r, _) in pairs.items()})
    hyp = _trn(score_dir / "hyp.trn", {k: h for k, (_, h) in pairs.items()})
    run_sclite(ref, hyp, score_dir / "result.txt", find_sclite())
    return score_dir / "result.txt"


def test_per_utterance_scores_from_real_sclite(tmp_path: Path) -> None:
    result = _score(tmp_path / "score_wer", SMALL)
    scores = sig.read_set_scores(result)
    assert scores.keys == tuple(sorted(SMALL))
    assert scores.errors.tolist() == [SMALL_ERRORS[k] for k in scores.keys]
    assert scores.ref_words.tolist() == [SMALL_WORDS[k] for k in scores.keys]
    total = parse_result(result)
    assert (int(scores.errors.sum()), int(scores.ref_words.sum())) == (total.n_err, total.wrd) == (7, 13)
    assert scores.wer == pytest.approx(100 * 7 / 13) == pytest.approx(total.err, abs=0.05)
    assert parse_utterances(result)["s1_u1"] == (4, 1, 1, 0)


def test_report_without_alignment_or_disagreeing_is_refused(tmp_path: Path) -> None:
    result = _score(tmp_path / "score_wer", SMALL)
    text = result.read_text()
    cut = tmp_path / "cut.txt"
    cut.write_text(text[: text.index("DUMP OF SYSTEM ALIGNMENT")])
    with pytest.raises(ValueError, match=f"{re.escape(str(cut))}: no per-utterance alignment"):
        sig.read_set_scores(cut)
    edited = tmp_path / "edited.txt"
    edited.write_text(text.replace("Scores: (#C #S #D #I) 4 1 1 0", "Scores: (#C #S #D #I) 4 1 1 5"))
    with pytest.raises(ValueError, match=f"{re.escape(str(edited))}: the alignment dump .* disagrees with the Sum row"):
        sig.read_set_scores(edited)
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "none.txt"))):
        sig.read_set_scores(tmp_path / "none.txt")


def _paired(errors_a, errors_b, ref_words, num_resamples: int = 1000, seed: int = 0) -> sig.Difference:
    """The bootstrap of one set as :func:`sig.compare_systems` runs it: errors (N,) or (seeds, N) each."""
    a, b = np.atleast_2d(errors_a), np.atleast_2d(errors_b)
    boot = sig.bootstrap_wers(np.concatenate([a, b]), ref_words, num_resamples, np.random.default_rng(seed))
    words = float(np.sum(ref_words))
    return sig.difference(100.0 * a.sum(axis=1) / words, 100.0 * b.sum(axis=1) / words, boot[: len(a)], boot[len(a):])


def test_known_small_case() -> None:
    # A errs on utterance 0 only, B never; 1 word each. Resamples of 2: {0,0} 1/4 (A 100%),
    # {1,1} 1/4 (tie), mixed 1/2 (A 50%): P(A better) = 0.5 * 1/4.
    diff = _paired(np.array([1, 0]), np.array([0, 0]), np.array([1, 1]), num_resamples=20000, seed=3)
    assert diff.diff == 50.0 and (diff.low, diff.high) == (0.0, 100.0)
    assert diff.p_a_better == pytest.approx(0.125, abs=0.01)
    flipped = _paired(np.array([0, 0]), np.array([1, 0]), np.array([1, 1]), num_resamples=20000, seed=3)
    assert flipped.diff == -50.0 and flipped.p_a_better == pytest.approx(1 - diff.p_a_better)


def test_wer_of_a_resample_is_summed_errors_over_summed_words() -> None:
    errors, words = np.array([[2, 1, 3, 1, 0]]), np.array([6, 2, 3, 0, 2])
    rng = np.random.default_rng(0)
    boot = sig.bootstrap_wers(errors, words, 50, rng)
    draws = np.random.default_rng(0).integers(0, 5, size=(50, 5))  # the draws bootstrap_wers made
    expected = 100 * errors[0][draws].sum(axis=1) / np.maximum(words[draws].sum(axis=1), 1)
    assert boot.shape == (1, 50) and np.allclose(boot[0], expected)


def _random_pair(n: int, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    words = rng.integers(4, 14, size=n)
    a = rng.binomial(words, 0.15)
    b = rng.binomial(words, 0.12)
    return a, b, words


def test_interval_shrinks_with_more_utterances() -> None:
    widths = []
    for n in (100, 1600):
        d = _paired(*_random_pair(n, 7), num_resamples=1000, seed=0)
        assert d.low <= d.diff <= d.high
        widths.append(d.high - d.low)
    assert widths[1] < widths[0] / 2.5  # ~1/sqrt(16) = 1/4 expected


def test_identical_systems() -> None:
    a, _, words = _random_pair(300, 1)
    d = _paired(a, a.copy(), words)
    assert (d.diff, d.low, d.high, d.p_a_better) == (0.0, 0.0, 0.0, 0.5)


def test_same_seed_same_result() -> None:
    a, b, words = _random_pair(200, 2)
    first, again = _paired(a, b, words, seed=5), _paired(a, b, words, seed=5)
    other = _paired(a, b, words, seed=6)
    assert first == again and (other.low, other.high) != (first.low, first.high) and other.diff == first.diff


def test_seeds_share_the_resamples() -> None:
    a, b, words = _random_pair(200, 4)
    one = _paired(a, b, words, seed=9)
    three = _paired(np.stack([a, a, a]), b, words, seed=9)  # same run three times: same answer
    for field in ("diff", "low", "high", "p_a_better"):
        assert getattr(three, field) == pytest.approx(getattr(one, field), abs=1e-9)
    c = a.copy()
    c[:20] = 0
    mixed = _paired(np.stack([a, c]), b, words, seed=9)
    wer = lambda e: 100 * e.sum() / words.sum()  # noqa: E731
    assert mixed.diff == pytest.approx((wer(a) + wer(c)) / 2 - wer(b))


def _decode_dir(root: Path, sets: Dict[str, Dict[str, tuple]]) -> Path:
    for name, pairs in sets.items():
        _score(root / name / "score_wer", pairs)
    return root


def _hyp_with_errors(words: Sequence[str], rng: np.random.Generator, rate: float) -> str:
    return " ".join("x" if rng.random() < rate else w for w in words)


def _experiment(tmp_path: Path, n: int = 40) -> Dict[str, list]:
    """Two systems x two seeds, decode dirs with mls_en_test, mls_fr_test and mls_en_dev."""
    rng = np.random.default_rng(0)
    refs = {s: {f"s{i % 3}_u{i:03d}": rng.choice(list("abcdefgh"), size=int(rng.integers(3, 9))) for i in range(n)}
            for s in ("mls_en_test", "mls_fr_test", "mls_en_dev")}
    dirs: Dict[str, list] = {}
    for system, rate in (("dense", 0.3), ("pathways", 0.1)):
        for seed in (0, 1):
            sets = {s: {k: (" ".join(w), _hyp_with_errors(w, rng, rate)) for k, w in utts.items()} for s, utts in refs.items()}
            dirs.setdefault(system, []).append(_decode_dir(tmp_path / f"{system}_{seed}" / "decode_x", sets))
    return dirs


def test_cli_compares_systems_over_seeds_and_sets(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    dirs = _experiment(tmp_path)
    out = tmp_path / "sig.json"
    argv = ["--out", str(out), "--num_resamples", "500"]
    for name, paths in dirs.items():
        argv += ["--system", name, *map(str, paths)]
    assert sig.main(argv) == 0
    report = json.loads(out.read_text())
    assert list(report["sets"]) == ["mls_en_test", "mls_fr_test"]  # *_test sets only by default
    assert report["sets"]["mls_en_test"]["utterances"] == 40
    dense = report["systems"]["dense"]["wer"]
    for set_name in report["sets"]:
        per_seed = [sig.read_set_scores(d / set_name / "score_wer" / "result.txt").wer for d in dirs["dense"]]
        assert dense[set_name]["per_seed"] == pytest.approx(per_seed)
        assert dense[set_name]["mean"] == pytest.approx(np.mean(per_seed))
        assert dense[set_name]["sd"] == pytest.approx(np.std(per_seed, ddof=1))
    assert dense["avg"]["mean"] == pytest.approx((dense["mls_en_test"]["mean"] + dense["mls_fr_test"]["mean"]) / 2)
    (comparison,) = report["comparisons"]
    avg = comparison["diff"]["avg"]
    assert (comparison["a"], comparison["b"]) == ("dense", "pathways")
    assert avg["diff"] == pytest.approx(dense["avg"]["mean"] - report["systems"]["pathways"]["wer"]["avg"]["mean"])
    assert 0 < avg["low"] < avg["diff"] < avg["high"] and avg["p_a_better"] == 0.0
    line = capsys.readouterr().out.strip()
    assert line.startswith("dense vs pathways: avg WER ") and "(2/2 seeds)" in line and "80 utts" in line
    # a set dir and a score dir name the same set; dev chosen explicitly
    one_set = ["--system", "a", str(dirs["dense"][0] / "mls_en_dev"), "--system", "b",
               str(dirs["pathways"][0] / "mls_en_dev" / "score_wer"), "--out", str(tmp_path / "dev.json")]
    assert sig.main(one_set) == 0
    assert list(json.loads((tmp_path / "dev.json").read_text())["sets"]) == ["mls_en_dev"]


def test_mismatched_or_missing_inputs_name_the_file(tmp_path: Path) -> None:
    dirs = _experiment(tmp_path, n=12)
    other = _decode_dir(tmp_path / "other" / "decode_x", {s: {"s0_u999": ("a b", "a b")} for s in ("mls_en_test", "mls_fr_test")})
    with pytest.raises(ValueError, match=r"other/decode_x/mls_en_test/score_wer/result.txt: utterances differ from .*1 extra"):
        sig.load_system("other", [other], like=sig.load_system("dense", dirs["dense"]))
    with pytest.raises(ValueError, match=r"other/decode_x/mls_fr_test/score_wer/result.txt: utterances differ from .*pathways_0"):
        sig.load_system("mixed", [dirs["pathways"][0], other / "mls_fr_test"], test_sets=["mls_fr_test"])
    with pytest.raises(FileNotFoundError, match=r"has no scored set 'mls_de_test' \(no .*dense_0/decode_x/mls_de_test/score_wer"):
        sig.load_system("dense", dirs["dense"], test_sets=["mls_de_test"])
    empty = re.escape(str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=f"no result.txt or <set>/score_wer/result.txt in {empty}"):
        sig.load_system("x", [tmp_path / "empty"])
    out = tmp_path / "never.json"
    argv = ["--system", "a", str(dirs["dense"][0]), "--system", "b", str(tmp_path / "empty"), "--out", str(out)]
    assert sig.main(argv) == 1 and not out.exists()


def test_score_dirs_are_those_of_stage_13() -> None:
    from espnet_pathways.recipe.stages.score import METRICS

    assert sig.SCORE_DIRS == {metric: score_dir for metric, (score_dir, _) in METRICS.items()}


def test_a_run_spread_over_per_language_dirs_is_one_seed(tmp_path: Path) -> None:
    """A monolingual row: each language's model decoded its own set; comma-joined dirs form one run."""
    dirs = _experiment(tmp_path, n=12)
    whole = sig.load_system("dense", dirs["dense"][:1])
    en, fr = dirs["dense"][0] / "mls_en_test", dirs["dense"][0] / "mls_fr_test"
    spread = sig.load_system("mono", [Path(f"{en},{fr}")], like=whole)
    assert spread.errors["mls_fr_test"].shape[0] == 1, "one seed"
    for set_name in ("mls_en_test", "mls_fr_test"):
        assert (spread.errors[set_name] == whole.errors[set_name]).all()
    with pytest.raises(ValueError, match="scored in both"):
        sig.find_run_results(Path(f"{en},{en}"))
