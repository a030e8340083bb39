"""``PathwaysASRTask``: ESPnet's ASR task plus the streaming Emformer transducer and language ids.

Usage (what ``python -m espnet_pathways.bin.asr_train`` runs)::

    python -m espnet_pathways.bin.asr_train --config conf/train_asr_emformer_demo.yaml \\
        --token_list tokens.txt --token_type bpe --bpemodel bpe_dir/ --lang_list lang_list.txt \\
        --train_data_path_and_name_and_type dump/train/wav.scp,speech,sound \\
        --train_data_path_and_name_and_type dump/train/text,text,text \\
        --train_data_path_and_name_and_type dump/train/utt2lang_id,lang,text_int ...

Additions to ``ASRTask``:
    * ``model: pathways_transducer`` builds :class:`PathwaysTransducerModel` from
      ``frontend``/``specaug``/``normalize``/``encoder`` (e.g. ``encoder: emformer``), ``predictor``
      (+ ``predictor_conf``), ``joiner_conf``, ``ctc_conf`` and ``model_conf``; any other ``model``
      falls back to ``ASRTask.build_model`` (Conformer CTC/attention etc. train unchanged).
    * ``--lang_list`` (file or list; stored as a list) and the optional data entry ``lang``.
    * ``--bpemodel DIR`` with per-language ``<lang>.model`` files switches the preprocessor to
      :class:`LanguageAwarePreprocessor`.
    * Training batches follow the pruning method (``PruningConfig.batches``): LAP ignores
      ``utt2category`` (mixed-language batches); the other methods get category batches in
      monolingual runs of ``--lang_run_length`` (default ``--accum_grad``) batches, so that every
      accumulation group holds one language (:mod:`espnet_pathways.tasks.language_runs`). Dense
      training, validation and plotting use ESPnet's iterators unchanged.
    * A pruning run is checked before any data is read (``build_optimizers``): its ``init_masks``
      (files, architecture, languages, ``initial_sparsity``) and, with ``--num_iters_per_epoch``,
      that its optimizer steps reach the end of the schedule (without it: once the training
      batches are known, in ``build_iter_factory``). Building a model to decode checks neither.
"""

from __future__ import annotations

import argparse
import copy
import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from espnet2.asr.ctc import CTC
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.fileio.read_text import read_2columns_text
from espnet2.iterators.abs_iter_factory import AbsIterFactory
from espnet2.iterators.sequence_iter_factory import SequenceIterFactory
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.tasks.asr import (
    ASRTask,
    encoder_choices,
    frontend_choices,
    model_choices,
    normalize_choices,
    specaug_choices,
)
from espnet2.torch_utils.initialize import initialize
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.train.class_choices import ClassChoices
from espnet2.train.distributed_utils import DistributedOption
from espnet2.utils.get_default_kwargs import get_default_kwargs
from espnet2.utils.nested_dict_action import NestedDictAction
from espnet2.utils.types import int_or_none, str_or_none

from espnet_pathways.asr.transducer.joiner import Joiner
from espnet_pathways.asr.transducer.predictor import LSTMPredictor
from espnet_pathways.pruning import ENGINE_ATTR, PruningConfig, attach_pruning
from espnet_pathways.pruning.methods import method_batches
from espnet_pathways.pruning.trainer import PathwaysTrainer
from espnet_pathways.tasks.language_runs import LanguageRunIterFactory, categories_ignored, check_run_options
from espnet_pathways.tasks.preprocessor import is_per_language_bpe
from espnet_pathways.tasks.registry import REGISTERED, register
from espnet_pathways.utils.lang_list import read_lang_list

register()

__all__ = ["PathwaysASRTask", "predictor_choices", "TRANSDUCER_MODEL"]

TRANSDUCER_MODEL = REGISTERED["model"]

predictor_choices = ClassChoices(
    "predictor",
    classes=dict(lstm=LSTMPredictor),
    type_check=None,
    default="lstm",
)


def _resolve_token_list(args: argparse.Namespace) -> List[str]:
    """``args.token_list`` (path or list) as a list, stored back so that config.yaml is portable."""
    if isinstance(args.token_list, str):
        with open(args.token_list, encoding="utf-8") as f:
            token_list = [line.rstrip() for line in f]
        args.token_list = list(token_list)
    elif isinstance(args.token_list, (tuple, list)):
        token_list = list(args.token_list)
    else:
        raise RuntimeError("--token_list must be a file path or a list")
    return token_list


def _resolve_lang_list(args: argparse.Namespace) -> Optional[List[str]]:
    """``args.lang_list`` (path or list) as a list, stored back so that config.yaml is portable."""
    if args.lang_list is None:
        return None
    args.lang_list = read_lang_list(args.lang_list)
    return args.lang_list


def _check_run_length(args: argparse.Namespace, config: PruningConfig, iters_per_epoch: int, source: str) -> None:
    """Refuse a pruning run whose optimizer steps (ESPnet steps every ``--accum_grad`` iterations)
    end before its schedule (:meth:`PruningConfig.check_steps`); ``source`` names ``iters_per_epoch``."""
    steps = args.max_epoch * (iters_per_epoch // args.accum_grad)
    config.check_steps(steps, f"--max_epoch {args.max_epoch} x {source} / --accum_grad {args.accum_grad}")


def _build_feature_blocks(
    args: argparse.Namespace,
) -> Tuple[Optional[AbsFrontend], Optional[AbsSpecAug], Optional[AbsNormalize], int]:
    """Frontend, SpecAugment and normalisation as ``ASRTask`` builds them; returns the feature size too."""
    if args.input_size is None:
        frontend = frontend_choices.get_class(args.frontend)(**args.frontend_conf)
        input_size = frontend.output_size()
    else:
        args.frontend = None
        args.frontend_conf = {}
        frontend = None
        input_size = args.input_size
    specaug = specaug_choices.get_class(args.specaug)(**args.specaug_conf) if args.specaug is not None else None
    normalize = (
        normalize_choices.get_class(args.normalize)(**args.normalize_conf) if args.normalize is not None else None
    )
    return frontend, specaug, normalize, input_size


class PathwaysASRTask(ASRTask):
    """ESPnet ASR task with the plugin's transducer, language ids and per-language BPE."""

    class_choices_list = ASRTask.class_choices_list + [
        # --predictor and --predictor_conf
        predictor_choices,
    ]

    # Trainer.run + writing the pruning outputs (masks, reports, re-masked averages) at the end
    trainer = PathwaysTrainer

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_task_arguments(parser)
        group = parser.add_argument_group(description="Pathways transducer related")
        group.add_argument(
            "--joiner_conf",
            action=NestedDictAction,
            default=get_default_kwargs(Joiner),
            help="Keyword arguments of the transducer joiner (joint_size, activation, dropout)",
        )
        group.add_argument(
            "--lang_list",
            type=str_or_none,
            default=None,
            help="Language codes indexed by the ids of the 'lang' data entry: a file with one code per line "
            "(stored in config.yaml as a list)",
        )
        group.add_argument(
            "--pruning_conf",
            action=NestedDictAction,
            default=dict(),
            help="Pruning method and schedule (see espnet_pathways.pruning.config); empty: dense training",
        )
        group.add_argument(
            "--lang_run_length",
            type=int_or_none,
            default=None,
            help="Pruning methods with monolingual batches: consecutive training batches of one language, a "
            "multiple of --accum_grad (default: --accum_grad, i.e. one accumulation group)",
        )

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> Tuple[str, ...]:
        return super().optional_data_names(train, inference) + ("lang",)

    @classmethod
    def build_preprocess_fn(
        cls, args: argparse.Namespace, train: bool
    ) -> Optional[Callable[[str, Dict[str, np.ndarray]], Dict[str, np.ndarray]]]:
        """ESPnet's preprocessor, or the language-aware one when ``--bpemodel`` is a directory."""
        if (args.use_preprocessor and args.preprocessor == "default"
                and is_per_language_bpe(args.token_type, args.bpemodel)):
            lang_list = _resolve_lang_list(args)
            args = copy.copy(args)
            args.preprocessor = REGISTERED["preprocessor"]
            args.preprocessor_conf = {**args.preprocessor_conf, "lang_list": lang_list}
        return super().build_preprocess_fn(args, train)

    @classmethod
    def build_iter_factory(cls, args: argparse.Namespace, distributed_option: DistributedOption, mode: str,
                           kwargs: Optional[dict] = None) -> AbsIterFactory:
        """ESPnet's iterator factory; a pruning run without ``--num_iters_per_epoch`` is checked here,
        once its batches per epoch are known, to reach the end of its schedule."""
        factory = super().build_iter_factory(args, distributed_option, mode, kwargs)
        if mode == "train" and args.pruning_conf and args.num_iters_per_epoch is None:
            if isinstance(factory, SequenceIterFactory):
                batches = len(factory.sampler)
                _check_run_length(args, PruningConfig.from_dict(args.pruning_conf), batches,
                                  f"{batches} batches per epoch")
            else:
                logging.warning(f"{type(factory).__name__}: batches per epoch unknown, the pruning schedule's "
                                "length is not checked (set --num_iters_per_epoch)")
        return factory

    @classmethod
    def build_sequence_iter_factory(cls, args: argparse.Namespace, iter_options, mode: str) -> AbsIterFactory:
        """ESPnet's sequence iterator; training batches as the pruning method wants them (module docstring)."""
        if mode != "train" or not args.pruning_conf:
            return super().build_sequence_iter_factory(args, iter_options, mode)
        method = args.pruning_conf.get("method")
        run_length = check_run_options(args.accum_grad, args.lang_run_length, iter_options.num_iters_per_epoch)
        if method_batches(method) == "mixed":
            logging.info(f"pruning method {method} trains on mixed-language batches: utt2category is ignored")
            with categories_ignored():
                return super().build_sequence_iter_factory(args, iter_options, mode)
        factory = super().build_sequence_iter_factory(args, iter_options, mode)
        utt2category = Path(iter_options.data_path_and_name_and_type[0][0]).parent / "utt2category"
        if not utt2category.exists():  # e.g. one language's data: nothing to keep apart
            return factory
        return LanguageRunIterFactory.from_factory(factory, read_2columns_text(utt2category), run_length)

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> AbsESPnetModel:
        """Build the model named by ``--model``; the plugin's transducer or any stock ESPnet ASR model."""
        lang_list = _resolve_lang_list(args)
        if args.model == TRANSDUCER_MODEL:
            model = cls.build_transducer(args)
        else:
            model = super().build_model(args)
        if args.pruning_conf:
            init_param = (args.init_param or [None])[0]
            attach_pruning(model, PruningConfig.from_dict(args.pruning_conf), lang_list or [], init_param)
        return model

    @classmethod
    def build_optimizers(cls, args: argparse.Namespace, model: torch.nn.Module) -> List[torch.optim.Optimizer]:
        """ESPnet's optimizers; a pruning engine follows the first one's steps. Its ``init_masks`` and,
        with ``--num_iters_per_epoch``, the run's length are checked here: training only, before any data."""
        optimizers = super().build_optimizers(args, model)
        engine = getattr(model, ENGINE_ATTR, None)
        if engine is not None:
            engine.bind(optimizers[0])
            if args.num_iters_per_epoch is not None:
                iters = args.num_iters_per_epoch
                _check_run_length(args, engine.config, iters, f"--num_iters_per_epoch {iters}")
        return optimizers

    @classmethod
    def build_transducer(cls, args: argparse.Namespace) -> AbsESPnetModel:
        """frontend -> specaug -> normalize -> encoder -> predictor + joiner (+ CTC)."""
        for unsupported in ("preencoder", "postencoder", "decoder"):
            if getattr(args, unsupported) is not None:
                raise ValueError(f"--{unsupported} is not supported with --model {TRANSDUCER_MODEL}")
        token_list = _resolve_token_list(args)
        vocab_size = len(token_list)
        logging.info(f"Vocabulary size: {vocab_size}")

        frontend, specaug, normalize, input_size = _build_feature_blocks(args)
        encoder = encoder_choices.get_class(args.encoder)(input_size=input_size, **args.encoder_conf)
        predictor = predictor_choices.get_class(args.predictor)(vocab_size=vocab_size, **args.predictor_conf)
        joiner = Joiner(vocab_size, encoder.output_size(), predictor.output_size(), **args.joiner_conf)
        ctc = None
        if float(args.model_conf.get("ctc_weight", 0.0)) > 0.0:
            ctc = CTC(odim=vocab_size, encoder_output_size=encoder.output_size(), **args.ctc_conf)
        model = model_choices.get_class(args.model)(
            vocab_size=vocab_size,
            token_list=token_list,
            frontend=frontend,
            specaug=specaug,
            normalize=normalize,
            encoder=encoder,
            predictor=predictor,
            joiner=joiner,
            ctc=ctc,
            **args.model_conf,
        )
        if args.init is not None:
            initialize(model, args.init)
        return model
