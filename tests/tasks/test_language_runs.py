"""Training batches by language: monolingual accumulation groups for the pathway methods, mixed
batches for LAP (``espnet_pathways.tasks.language_runs`` through ``PathwaysASRTask``)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Dict, List

import pytest
import yaml
from espnet2.train.distributed_utils import DistributedOption

from asr_tiny_corpus import TINY_CONFIG, UTTERANCES, train_args, write_corpus
from espnet_pathways.tasks.asr import PathwaysASRTask
from espnet_pathways.tasks.language_runs import LanguageRunSampler, check_run_options

UTT2LANG = {f"{lang}_{i}": lang for lang in ("en", "fr", "it") for i in range(9)}


def _batches(size: int = 1) -> List[List[str]]:
    """Monolingual batches of ``size`` utterances, [num_batches][size]."""
    out = []
    for lang in ("en", "fr", "it"):
        utts = [u for u in UTT2LANG if u.startswith(lang)]
        out += [utts[i: i + size] for i in range(0, len(utts), size)]
    return out


def _langs(batches) -> List[str]:
    langs = []
    for batch in batches:
        (lang,) = {UTT2LANG.get(u) or UTTERANCES[u][0] for u in batch}
        langs.append(lang)
    return langs


def test_every_run_holds_one_language_and_the_run_order_is_shuffled_per_epoch():
    sampler = LanguageRunSampler(_batches(), UTT2LANG, run_length=4)
    assert len(sampler) == 24, "9 batches per language -> 2 runs of 4 each, one tail batch dropped"
    orders = []
    for seed in range(6):
        runs = sampler.runs(seed)
        assert [len(r) for r in runs] == [4] * 6
        assert all(len(set(_langs(run))) == 1 for run in runs)
        assert sorted(_langs(r)[0] for r in runs) == ["en", "en", "fr", "fr", "it", "it"], "languages balanced"
        assert sampler.generate(seed) == [b for r in runs for b in r]
        orders.append(tuple(_langs(r)[0] for r in runs))
    assert sampler.generate(3) == LanguageRunSampler(_batches(), UTT2LANG, 4).generate(3), "deterministic"
    assert len(set(orders)) > 1, "the run order changes with the epoch"
    dropped = {b for seed in range(6) for b in set(map(tuple, _batches())) - set(sampler.generate(seed))}
    assert len(dropped) > 3, "the dropped tail batch changes with the epoch"


def test_ranks_shard_batches_and_build_the_same_language_order():
    full = _batches(size=3)
    ranks = [LanguageRunSampler([b[r::2] for b in full], UTT2LANG, 1) for r in range(2)]
    for seed in range(4):
        a, b = (s.generate(seed) for s in ranks)
        assert _langs(a) == _langs(b)
        assert all(set(x).isdisjoint(y) for x, y in zip(a, b))


def test_a_mixed_batch_or_bad_options_are_refused():
    with pytest.raises(ValueError, match=r"languages \['en', 'fr'\]"):
        LanguageRunSampler([["en_0", "fr_0"]], UTT2LANG, 1)
    with pytest.raises(ValueError, match="no language has 10"):
        LanguageRunSampler(_batches(), UTT2LANG, 10)
    with pytest.raises(ValueError, match="multiple of --accum_grad"):
        check_run_options(accum_grad=4, run_length=6, num_iters_per_epoch=None)
    with pytest.raises(ValueError, match="num_iters_per_epoch"):
        check_run_options(accum_grad=4, run_length=None, num_iters_per_epoch=10)
    assert check_run_options(accum_grad=4, run_length=None, num_iters_per_epoch=8) == 4


# ---- through the task: the iterator ESPnet's trainer gets ----------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Dict[str, Path]:
    root = tmp_path_factory.mktemp("language_runs")
    files = write_corpus(root / "data")
    (root / "data" / "utt2category").write_text("".join(f"{u} {l}\n" for u, (l, _) in sorted(UTTERANCES.items())))
    return files


def _train_iterator(corpus, tmp_path, pruning: dict, **conf):
    config = yaml.safe_load(TINY_CONFIG)
    config.update({"pruning_conf": pruning, "batch_type": "folded", "fold_length": [800000], **conf})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    args = PathwaysASRTask.get_parser().parse_args(train_args(corpus, path, tmp_path / "exp", 1))
    return PathwaysASRTask.build_iter_factory(args, DistributedOption(), "train")


def _epochs(factory, num_epochs: int) -> List[List[List[str]]]:
    return [[list(keys) for keys, _ in factory.build_iter(epoch)] for epoch in range(1, num_epochs + 1)]


PATHWAYS = {"method": "pathways", "init_masks": ["unused.pwm"]}


@pytest.mark.parametrize("accum_grad, run_length", [(1, None), (2, None), (1, 3), (3, 3)])
def test_pathway_methods_get_monolingual_accumulation_groups(corpus, tmp_path, accum_grad, run_length):
    extra = {} if run_length is None else {"lang_run_length": run_length}
    factory = _train_iterator(corpus, tmp_path, PATHWAYS, batch_size=1, accum_grad=accum_grad,
                              num_iters_per_epoch=3 * accum_grad, **extra)
    runs = run_length or accum_grad
    seen = set()
    for epoch in _epochs(factory, 4):
        assert len(epoch) == 3 * accum_grad
        langs = _langs(epoch)
        for start in range(0, len(epoch), runs):
            assert len(set(langs[start: start + runs])) == 1, f"a run mixes languages: {langs}"
        seen.add(tuple(langs))
    assert len(seen) > 1, "the language order is shuffled"


def test_lap_batches_mix_languages_and_pathways_batches_never_do(corpus, tmp_path):
    lap = {"method": "lap", "target_sparsity": 0.5, "num_events": 1, "prune_interval": 1}
    mixed = _epochs(_train_iterator(corpus, tmp_path, lap, batch_size=3, num_iters_per_epoch=2), 3)
    assert any(len({UTTERANCES[u][0] for u in batch}) == 2 for epoch in mixed for batch in epoch)
    mono = _epochs(_train_iterator(corpus, tmp_path, PATHWAYS, batch_size=3, num_iters_per_epoch=2), 3)
    assert all(len({UTTERANCES[u][0] for u in batch}) == 1 for epoch in mono for batch in epoch)
    # the same files, dense training: ESPnet's category batches, untouched
    dense = _epochs(_train_iterator(corpus, tmp_path, {}, batch_size=3, num_iters_per_epoch=2), 3)
    assert all(len({UTTERANCES[u][0] for u in batch}) == 1 for epoch in dense for batch in epoch)


def test_pathways_refuses_an_epoch_slice_off_the_accumulation_boundary(corpus, tmp_path):
    with pytest.raises(ValueError, match="num_iters_per_epoch"):
        _train_iterator(corpus, tmp_path, PATHWAYS, batch_size=1, accum_grad=2, num_iters_per_epoch=3)


def test_every_batch_is_used_across_epochs(corpus, tmp_path):
    factory = _train_iterator(corpus, tmp_path, PATHWAYS, batch_size=1, accum_grad=2, num_iters_per_epoch=4)
    used = set(itertools.chain.from_iterable(b for e in _epochs(factory, 6) for b in e))
    assert used == set(UTTERANCES), "the dropped tails change per epoch"
