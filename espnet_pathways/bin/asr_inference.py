"""Decode with a trained pathways transducer; ESPnet's ``asr_inference`` arguments and outputs.

Usage::

    python -m espnet_pathways.bin.asr_inference --config conf/decode_streaming.yaml \\
        --asr_train_config exp/asr/config.yaml --asr_model_file exp/asr/valid.loss.best.pth \\
        --data_path_and_name_and_type dump/test_fr/wav.scp,speech,sound \\
        --data_path_and_name_and_type dump/test_fr/utt2lang_id,lang,text_int \\
        --key_file dump/test_fr/wav.scp --output_dir exp/asr/decode/test_fr --lang fr

Writes ``output_dir/1best_recog/{text,token,token_int,score}`` (and ``<n>best_recog`` up to
``--nbest``), like ``espnet2.bin.asr_inference``.

``--lang auto`` identifies each utterance's language: every pathway of the model decodes it (with
``--streaming true`` only the first ``--lid_chunks`` encoder chunks, 0: all of them) and the best
length-normalised score wins (:func:`espnet_pathways.asr.inference.lid_score`); the chosen
languages go to ``<n>best_recog/lang`` (``utt lang``). ``lang`` data entries are then ignored. A
model without a pathway mask per language refuses it.

A stock ESPnet model (any ``model`` other than ``pathways_transducer``, e.g. a Conformer
CTC/attention model trained with ``espnet_pathways.bin.asr_train``) is decoded by
``espnet2.bin.asr_inference`` with all of its options; ``--lang`` then selects the pathway.

Language: a ``lang`` data entry (``utt2lang_id,lang,text_int``: integer ids into the model's
``lang_list``) selects each utterance's pathway; otherwise ``--lang CODE`` does. An unknown code is
an error. ``--streaming true`` (default) encodes segment by segment with carried state;
``--beam_size 1`` (default) is greedy search.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
import yaml
from espnet2.fileio.datadir_writer import DatadirWriter
from espnet2.torch_utils.set_all_random_seed import set_all_random_seed
from espnet2.utils import config_argparse
from espnet2.utils.types import str2bool, str2triple_str, str_or_none
from espnet.utils.cli_utils import get_commandline_args

from espnet_pathways.asr.inference import AUTO_LANG, DEFAULT_LID_CHUNKS, Speech2Text, activate_pathway
from espnet_pathways.tasks.asr import TRANSDUCER_MODEL, PathwaysASRTask
from espnet_pathways.utils.lang_list import lang_code_to_id

__all__ = ["decode_with_espnet", "get_parser", "inference", "main"]


def inference(
    output_dir: str,
    data_path_and_name_and_type: Sequence[Tuple[str, str, str]],
    asr_train_config: str,
    asr_model_file: Optional[str] = None,
    key_file: Optional[str] = None,
    batch_size: int = 1,
    ngpu: int = 0,
    seed: int = 0,
    dtype: str = "float32",
    num_workers: int = 1,
    allow_variable_data_keys: bool = False,
    beam_size: int = 1,
    nbest: int = 1,
    streaming: bool = True,
    max_symbols_per_frame: int = 3,
    lang: Optional[str] = None,
    lid_chunks: int = DEFAULT_LID_CHUNKS,
    log_level: str = "INFO",
) -> None:
    """Decode every utterance of the data entries and write ESPnet's n-best directories."""
    logging.basicConfig(level=log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    if batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {batch_size}")
    if ngpu > 1:
        raise NotImplementedError(f"--ngpu must be 0 or 1, got {ngpu}")
    device = "cuda" if ngpu >= 1 else "cpu"
    set_all_random_seed(seed)

    s2t = Speech2Text(
        asr_train_config,
        asr_model_file,
        device=device,
        dtype=dtype,
        beam_size=beam_size,
        nbest=nbest,
        streaming=streaming,
        max_symbols_per_frame=max_symbols_per_frame,
        lang=lang,
        lid_chunks=lid_chunks,
    )
    train_args = s2t.train_args
    auto = lang == AUTO_LANG
    if auto and any(name == "lang" for _, name, _ in data_path_and_name_and_type):
        logging.warning(f"--lang {AUTO_LANG}: the 'lang' data entry is ignored")
    loader = PathwaysASRTask.build_streaming_iterator(  # one utterance at a time: ESPnet's loader
        data_path_and_name_and_type,                     # ignores batch_size beside an utt2category file
        dtype=dtype,
        batch_size=1,
        key_file=key_file,
        num_workers=num_workers,
        preprocess_fn=PathwaysASRTask.build_preprocess_fn(train_args, False),
        collate_fn=PathwaysASRTask.build_collate_fn(train_args, False),
        allow_variable_data_keys=allow_variable_data_keys,
        inference=True,
    )
    utterances = _utterances(loader, auto)
    with DatadirWriter(output_dir) as writer:
        while batch := list(itertools.islice(utterances, batch_size)):
            for (key, _, _), results in zip(batch, _decode_together(s2t, batch, None if auto else lang, auto)):
                for n, result in enumerate(results, start=1):
                    ibest = writer[f"{n}best_recog"]
                    ibest["token"][key] = " ".join(result.tokens)
                    ibest["token_int"][key] = " ".join(map(str, result.token_int))
                    ibest["score"][key] = str(result.score)
                    ibest["text"][key] = result.text
                    if auto:
                        ibest["lang"][key] = result.lang
    logging.info(f"decoded into {Path(output_dir) / '1best_recog'}")


Utterance = Tuple[str, torch.Tensor, Optional[int]]
"""Key, (N,) waveform and language id (``lang`` data entry; None: none given)."""


def _utterances(loader, auto: bool) -> Iterator[Utterance]:
    """Every utterance of the loader's batches, in order (``auto``: the ``lang`` entry ignored)."""
    for keys, batch in loader:
        for i, key in enumerate(keys):
            lang = int(batch["lang"][i].reshape(-1)[0]) if "lang" in batch and not auto else None
            yield key, batch["speech"][i, : int(batch["speech_lengths"][i])], lang


def _decode_together(s2t: Speech2Text, utterances: Sequence[Utterance], lang: Optional[str], auto: bool) -> list:
    """N-best results of ``utterances``, in order: those of one language (their ``lang`` entry, else
    ``lang``) are decoded together."""
    by_lang = {}
    for i, (_, _, utt_lang) in enumerate(utterances):
        by_lang.setdefault(lang if utt_lang is None else utt_lang, []).append(i)
    results = [None] * len(utterances)
    for utt_lang, index in by_lang.items():
        waves = [utterances[i][1] for i in index]
        speech = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
        lengths = torch.tensor([w.numel() for w in waves])
        try:
            decoded = s2t.decode_batch(speech, lengths, lang=AUTO_LANG if auto else utt_lang)
        except (KeyError, ValueError) as err:
            keys = ", ".join(utterances[i][0] for i in index[:3])
            raise ValueError(f"utterance(s) {keys}: {err}") from err
        for i, result in zip(index, decoded):
            results[i] = result
    return results


def get_parser() -> config_argparse.ArgumentParser:
    """Arguments of ``espnet2.bin.asr_inference`` that apply to a transducer, plus ``--lang``."""
    parser = config_argparse.ArgumentParser(
        description="Pathways transducer decoding", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--log_level",
        type=lambda x: x.upper(),
        default="INFO",
        choices=("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET"),
    )
    parser.add_argument("--output_dir", type=str, required=True)
    parser.add_argument("--ngpu", type=int, default=0, help="0 = CPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=["float16", "float32", "float64"])
    parser.add_argument("--num_workers", type=int, default=1)

    group = parser.add_argument_group("Input data related")
    group.add_argument("--data_path_and_name_and_type", type=str2triple_str, required=True, action="append")
    group.add_argument("--key_file", type=str_or_none)
    group.add_argument("--allow_variable_data_keys", type=str2bool, default=False)

    group = parser.add_argument_group("The model configuration related")
    group.add_argument("--asr_train_config", type=str, required=True)
    group.add_argument("--asr_model_file", type=str)

    group = parser.add_argument_group("Search related")
    group.add_argument("--batch_size", type=int, default=1,
                       help="utterances decoded together (greedy search; beam search decodes them one by one)")
    group.add_argument("--nbest", type=int, default=1)
    group.add_argument("--beam_size", type=int, default=1, help="1 = greedy search")
    group.add_argument("--max_symbols_per_frame", type=int, default=3)
    group.add_argument(
        "--streaming", type=str2bool, default=True, help="segment by segment with carried state (true) or one pass"
    )
    group.add_argument(
        "--lang",
        type=str_or_none,
        default=None,
        help="language code of the model's lang_list; selects the pathway (a 'lang' data entry overrides it); "
        f"'{AUTO_LANG}': decode with every pathway and keep the best (writes <n>best_recog/lang)",
    )
    group.add_argument(
        "--lid_chunks",
        type=int,
        default=DEFAULT_LID_CHUNKS,
        help=f"--lang {AUTO_LANG} with --streaming true: encoder chunks every pathway decodes before the best "
        "continues alone (0: the whole utterance)",
    )
    return parser


def _trained_model_name(argv: Sequence[str]) -> Optional[str]:
    """``model`` of the training config named by ``--asr_train_config`` (or inside ``--config``)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--asr_train_config")
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    path = known.asr_train_config
    if path is None and known.config is not None:
        with open(known.config, encoding="utf-8") as f:
            path = (yaml.safe_load(f) or {}).get("asr_train_config")
    if path is None:
        return None  # the full parser reports the missing option
    if not Path(path).is_file():
        raise FileNotFoundError(f"--asr_train_config: no such file: {path}")
    with open(path, encoding="utf-8") as f:
        return (yaml.safe_load(f) or {}).get("model", "espnet")


def decode_with_espnet(argv: Sequence[str]) -> None:
    """Decode a stock ESPnet ASR model with ``espnet2.bin.asr_inference`` (all of its options).

    The model is built by the plugin task (so plugin classes and attached pathway masks load), and
    ``--lang CODE`` selects the pathway for the whole run (per-utterance ``lang`` entries are a
    transducer-only feature).
    """
    import espnet2.bin.asr_inference as stock

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--lang", type=str_or_none, default=None)
    known, rest = pre.parse_known_args(list(argv))
    if known.lang == AUTO_LANG:
        raise ValueError(f"--lang {AUTO_LANG} decodes {TRANSDUCER_MODEL} models only; give this model --lang CODE")

    class _PathwayTask(PathwaysASRTask):
        @classmethod
        def build_model_from_file(cls, *args, **kwargs):
            model, train_args = super().build_model_from_file(*args, **kwargs)
            code = None
            if known.lang is not None:
                lang_code_to_id(known.lang, getattr(train_args, "lang_list", None), where="--lang")
                code = known.lang
            activate_pathway(model, code)
            return model, train_args

    original = stock.ASRTask
    stock.ASRTask = _PathwayTask
    try:
        stock.main(rest)
    finally:
        stock.ASRTask = original


def main(cmd: Optional[List[str]] = None) -> None:
    """Parse ``cmd`` (default: sys.argv) and decode; stock ESPnet models go to :func:`decode_with_espnet`."""
    argv = list(sys.argv[1:] if cmd is None else cmd)
    if _trained_model_name(argv) not in (None, TRANSDUCER_MODEL):
        decode_with_espnet(argv)
        return
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    logging.info(get_commandline_args())
    kwargs = vars(args)
    kwargs.pop("config", None)
    inference(**kwargs)


if __name__ == "__main__":
    main()
