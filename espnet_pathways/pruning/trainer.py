"""ESPnet's Trainer with one addition: when training ends, a pruning run fixes its masks and
writes its outputs (see :mod:`espnet_pathways.pruning.outputs`). Everything during training
happens through the engine's hooks, so ``train_one_epoch`` is ESPnet's own.

``masks.pwm`` marks a finished pruning run: it is removed when a run starts (ESPnet's averaging at
the end of training rewrites ``*ave*.pth`` un-masked) and written last, after those checkpoints
are re-masked."""

from __future__ import annotations

from pathlib import Path

from espnet2.train.trainer import Trainer

from espnet_pathways.pruning.engine import ENGINE_ATTR
from espnet_pathways.pruning.outputs import HISTORY_FILE, MASKS_FILE, REPORT_DIR, write_pruning_outputs

__all__ = ["PathwaysTrainer"]


class PathwaysTrainer(Trainer):
    """``Trainer.run`` followed by the pruning run's finalisation (rank 0 writes)."""

    @classmethod
    def run(cls, model, optimizers, schedulers, train_iter_factory, valid_iter_factory,
            plot_attention_iter_factory, trainer_options, distributed_option) -> None:
        engine = getattr(model, ENGINE_ATTR, None)
        writer = not distributed_option.distributed or distributed_option.dist_rank == 0
        if engine is not None and writer:
            (Path(trainer_options.output_dir) / MASKS_FILE).unlink(missing_ok=True)
            # before run(): ESPnet resumes inside it, and the resumed step trims the history
            engine.record_history(Path(trainer_options.output_dir) / REPORT_DIR / HISTORY_FILE)
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
        if engine is None:
            return
        engine.freeze()
        if writer:
            write_pruning_outputs(model, engine, Path(trainer_options.output_dir))
