"""ESPnet's Trainer with one addition: when training ends, a pruning run fixes its masks and
writes its outputs (see :mod:`espnet_pathways.pruning.outputs`). Everything during training
happens through the engine's hooks, so ``train_one_epoch`` is ESPnet's own."""

from __future__ import annotations

from pathlib import Path

from espnet2.train.trainer import Trainer

from espnet_pathways.pruning.engine import ENGINE_ATTR
from espnet_pathways.pruning.outputs import write_pruning_outputs

__all__ = ["PathwaysTrainer"]


class PathwaysTrainer(Trainer):
    """``Trainer.run`` followed by the pruning run's finalisation (rank 0 writes)."""

    @classmethod
    def run(cls, model, optimizers, schedulers, train_iter_factory, valid_iter_factory,
            plot_attention_iter_factory, trainer_options, distributed_option) -> None:
        super().run(
            model=model,
            optimizers=optimizers,
            schedulers=schedulers,
            train_iter_factory=train_iter_factory,
            valid_iter_factory=valid_iter_factory,
            plot_attention_iter_factory=plot_attention_iter_factory,
            trainer_options=trainer_options,
            distributed_option=distributed_option,
        )
        engine = getattr(model, ENGINE_ATTR, None)
        if engine is None:
            return
        engine.freeze()
        if not distributed_option.distributed or distributed_option.dist_rank == 0:
            write_pruning_outputs(model, engine, Path(trainer_options.output_dir))
