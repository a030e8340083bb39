"""Pruning runs that ``PathwaysASRTask`` refuses before reading any data: bad ``init_masks`` (missing
file, other architecture, language outside the run, sparsity other than ``initial_sparsity``) and
optimizer steps that end before the pruning schedule does."""

from __future__ import annotations

import pytest
import yaml

from asr_tiny_corpus import TINY_CONFIG, train_args, write_corpus
from espnet2.train.distributed_utils import DistributedOption
from espnet_pathways.bin import asr_train
from espnet_pathways.masks import MaskMismatchError
from espnet_pathways.pruning import PruningConfigError
from espnet_pathways.tasks.asr import PathwaysASRTask
from toy import write_masks

IMP = {"method": "imp", "target_sparsity": 0.5, "schedule": "cubic", "num_events": 2, "prune_interval": 4}  # ends at 8
ADAPTIVE = {"method": "adaptive_imp", "target_sparsity": 0.6, "schedule": "cubic", "initial_sparsity": 0.2,
            "num_events": 2, "prune_interval": 8, "adapt_interval": 3}  # last event at 16, masks fixed at 24


class DataRead(Exception):
    """Raised instead of building a data iterator."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("task_checks") / "data")


@pytest.fixture
def no_data(monkeypatch):
    """Training stops where ESPnet would build its first data iterator."""

    def refuse(cls, *args, **kwargs):
        raise DataRead

    monkeypatch.setattr(PathwaysASRTask, "build_iter_factory", classmethod(refuse))


def _args(corpus, tmp_path, pruning: dict, max_epoch: int = 1, **conf) -> list:
    config = yaml.safe_load(TINY_CONFIG)
    config.update(pruning_conf=pruning, **conf)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return train_args(corpus, path, tmp_path / "exp", max_epoch)


def _model(corpus, tmp_path):
    """The tiny corpus' dense transducer (for mask files that fit it)."""
    args = PathwaysASRTask.get_parser().parse_args(_args(corpus, tmp_path, {}))
    return PathwaysASRTask.build_model(args)


@pytest.mark.parametrize("case", ["missing", "architecture", "language", "initial_sparsity"])
def test_bad_init_masks_fail_before_any_data_is_read(corpus, tmp_path, no_data, case):
    model = _model(corpus, tmp_path)
    pruning = {"method": "pathways"}
    if case == "missing":
        paths = [str(tmp_path / "gone.pwm")]
        error, match = FileNotFoundError, "pruning_conf.init_masks: mask file not found: .*gone.pwm"
    elif case == "architecture":
        paths, _ = write_masks(tmp_path, {"xx": 0.5, "yy": 0.5})  # masks of the toy model
        error, match = MaskMismatchError, r"init_masks: .*xx\.pwm does not fit the model .*: no mask for the model's " \
                                          r"tensor 'encoder\.\S+'"
    elif case == "language":
        paths, _ = write_masks(tmp_path, {"xx": 0.5, "zz": 0.5}, model=model)
        error, match = PruningConfigError, r"init_masks: .*zz\.pwm holds language\(s\) \['zz'\], none of the run's " \
                                           r"languages \['xx', 'yy'\]"
    else:  # Dynamic ASR Pathways starting at 70% from 20%-sparse masks
        paths, _ = write_masks(tmp_path, {"xx": 0.2, "yy": 0.2}, model=model)
        pruning = dict(method="dynamic_pathways", target_sparsity=0.7, initial_sparsity=0.7, num_events=1,
                       prune_interval=4, adapt_interval=2)
        error, match = PruningConfigError, r"init_masks: .*xx\.pwm, language 'xx', has sparsity 0\.20\d+, but " \
                                           r"pruning_conf\.initial_sparsity is 0\.7"
    args = _args(corpus, tmp_path, {**pruning, "init_masks": paths})
    with pytest.raises(error, match=match):
        asr_train.main(args)
    # decoding builds the model from the same config: the masks come from the checkpoint, not init_masks
    PathwaysASRTask.build_model(PathwaysASRTask.get_parser().parse_args(args))


@pytest.mark.parametrize("accum_grad, max_epoch", [(1, 1), (2, 3)])
def test_a_run_shorter_than_its_schedule_is_refused_before_any_data_is_read(corpus, tmp_path, no_data,
                                                                           accum_grad, max_epoch):
    steps = max_epoch * 12 // accum_grad  # 12 or 18 of the 24 the schedule needs
    args = _args(corpus, tmp_path, ADAPTIVE, max_epoch, num_iters_per_epoch=12, accum_grad=accum_grad)
    with pytest.raises(PruningConfigError, match=rf"the run has {steps} optimizer steps \(--max_epoch {max_epoch} x "
                       rf"--num_iters_per_epoch 12 / --accum_grad {accum_grad}\), the schedule needs 24"):
        asr_train.main(args)
    with pytest.raises(DataRead):  # the user accepts masks short of the target
        asr_train.main(args + ["--pruning_conf", "allow_short_schedule=true"])


def test_without_num_iters_per_epoch_the_iterator_checks_the_run_length(corpus, tmp_path):
    """3 batches of 2 utterances per epoch: 2 epochs (6 steps) are short of IMP's 8, 3 are enough."""

    def factory(max_epoch: int):
        argv = _args(corpus, tmp_path, IMP, max_epoch, num_iters_per_epoch=None, batch_size=2)
        args = PathwaysASRTask.get_parser().parse_args(argv)
        return PathwaysASRTask.build_iter_factory(args, DistributedOption(), "train")

    with pytest.raises(PruningConfigError, match=r"the run has 6 optimizer steps \(--max_epoch 2 x 3 batches per "
                       r"epoch / --accum_grad 1\), the schedule needs 8"):
        factory(2)
    assert len(factory(3).sampler) == 3
