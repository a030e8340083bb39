"""ESPnet model: frontend -> SpecAugment -> normalize -> encoder -> LSTM predictor + joiner (RNN-T).

Dimension legend: B: batch, N: samples, T: feature frames, F: features, T': encoder frames,
D: encoder size, U: labels, V: vocabulary (blank = 0).

The transducer loss is ``torchaudio.functional.rnnt_loss``; an auxiliary CTC loss on the encoder
output is added with ``ctc_weight``. The language id entries (``lang``, ``lang_lengths``) that the
data loader delivers are accepted and left to the pathway-mask hook that may be installed on the
model (``espnet_pathways.masks.attach``); the model itself is language-agnostic.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import editdistance
import torch
import torchaudio
from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from espnet2.asr.specaug.abs_specaug import AbsSpecAug
from espnet2.layers.abs_normalize import AbsNormalize
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from espnet_pathways.asr.search.greedy import greedy_search
from espnet_pathways.asr.text import detokenize
from espnet_pathways.asr.transducer.joiner import Joiner
from espnet_pathways.asr.transducer.predictor import LSTMPredictor

__all__ = ["PathwaysTransducerModel", "VOCAB_TENSORS"]

VOCAB_TENSORS = (
    "joiner.output.weight",
    "joiner.output.bias",
    "predictor.embed.weight",
    "ctc.ctc_lo.weight",
    "ctc.ctc_lo.bias",
)
"""Parameters with one row per token (dimension 0 is V); the CTC ones exist with ``ctc_weight > 0``."""


class PathwaysTransducerModel(AbsESPnetModel):
    """Streaming transducer for ESPnet's trainer.

    Args:
        vocab_size: V.
        token_list: id -> token; ``token_list[0]`` must be ``sym_blank``.
        frontend: feature extractor (None when features come from the data loader).
        specaug: augmentation applied in training mode only (like dropout).
        normalize: feature normalisation (e.g. global MVN).
        encoder: encoder, e.g. :class:`EmformerEncoder`.
        predictor: label-side network.
        joiner: joint network.
        ctc: auxiliary CTC head, or None.
        ctc_weight: weight of the CTC loss (needs ``ctc``).
        transducer_weight: weight of the transducer loss (0 = CTC-only warm-up).
        report_cer: greedy-decode validation batches and report ``cer``.
        report_wer: same, ``wer``.
        max_symbols_per_frame: greedy search cap used for the validation scores.
        sym_space: space symbol of character token lists.
        sym_blank: blank symbol.
        extract_feats_in_collect_stats: let ESPnet's collect-stats stage call ``collect_feats``.
        lang_vocab_size: language -> n: that language emits only token ids < n and ``<sos/eos>``
            (the vocabulary it was trained with before later languages were added before
            ``<sos/eos>``); a language not listed emits every token.
    """

    def __init__(
        self,
        vocab_size: int,
        token_list: Sequence[str],
        frontend: Optional[AbsFrontend],
        specaug: Optional[AbsSpecAug],
        normalize: Optional[AbsNormalize],
        encoder: AbsEncoder,
        predictor: LSTMPredictor,
        joiner: Joiner,
        ctc: Optional[CTC],
        ctc_weight: float = 0.0,
        transducer_weight: float = 1.0,
        report_cer: bool = True,
        report_wer: bool = True,
        max_symbols_per_frame: int = 3,
        sym_space: str = "<space>",
        sym_blank: str = "<blank>",
        extract_feats_in_collect_stats: bool = True,
        lang_vocab_size: Optional[Mapping[str, int]] = None,
    ) -> None:
        super().__init__()
        if len(token_list) != vocab_size:
            raise ValueError(f"token_list has {len(token_list)} entries but vocab_size is {vocab_size}")
        if token_list[0] != sym_blank:
            raise ValueError(f"token_list[0] must be the blank symbol {sym_blank!r}, got {token_list[0]!r}")
        if ctc_weight > 0.0 and ctc is None:
            raise ValueError("model_conf.ctc_weight > 0 needs a CTC head")
        if transducer_weight <= 0.0 and ctc_weight <= 0.0:
            raise ValueError("model_conf: transducer_weight and ctc_weight cannot both be 0")
        self.vocab_size = vocab_size
        self.token_list = list(token_list)
        self.blank_id = 0
        self.frontend = frontend
        self.specaug = specaug
        self.normalize = normalize
        self.encoder = encoder
        self.predictor = predictor
        self.joiner = joiner
        self.ctc = ctc if ctc_weight > 0.0 else None
        self.ctc_weight = ctc_weight
        self.transducer_weight = transducer_weight
        self.report_cer = report_cer
        self.report_wer = report_wer
        self.max_symbols_per_frame = max_symbols_per_frame
        self.sym_space = sym_space
        self.extract_feats_in_collect_stats = extract_feats_in_collect_stats
        self.lang_vocab_size: Dict[str, int] = dict(lang_vocab_size or {})
        for lang, size in self.lang_vocab_size.items():
            if not isinstance(size, int) or not 2 < size < vocab_size:
                raise ValueError(
                    f"model_conf.lang_vocab_size: {lang!r}: {size!r} must be an integer in (2, {vocab_size}) "
                    f"(vocab_size {vocab_size})"
                )

    # ------------------------------------------------------------------ languages
    def select_language(self, lang: Optional[str]) -> None:
        """Restrict the output to ``lang``'s vocabulary (``lang_vocab_size``); None or an unlisted
        language: every token. Called by the mask handle at every pathway switch."""
        self.joiner.restrict_output(self.lang_vocab_size.get(lang) if lang is not None else None)

    def token_rows_unused_by(self, languages: Sequence[str]) -> Dict[str, torch.Tensor]:
        """Per :data:`VOCAB_TENSORS` parameter, True on the rows of the tokens that none of
        ``languages`` can emit (empty when one of them emits every token)."""
        limits = [self.lang_vocab_size.get(lang) for lang in languages]
        if not limits or any(limit is None for limit in limits):
            return {}
        params = dict(self.named_parameters())
        out = {}
        for name in VOCAB_TENSORS:
            if name in params:
                rows = torch.zeros_like(params[name], dtype=torch.bool)
                rows[max(limits) : -1] = True
                out[name] = rows
        return out

    # ------------------------------------------------------------------ features / encoder
    def extract_feats(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Frontend, then (training mode only) SpecAugment, then normalisation.

        Args:
            speech (Tensor): (B, N) waveform, or (B, T, F) features when there is no frontend.
            speech_lengths (Tensor): (B,)
        Returns:
            Tensor: (B, T, F) features.
            Tensor: (B,) frames.
        """
        speech = speech[:, : int(speech_lengths.max())]
        if self.frontend is not None:
            feats, feats_lengths = self.frontend(speech, speech_lengths)
        else:
            feats, feats_lengths = speech, speech_lengths
        if self.specaug is not None and self.training:
            feats, feats_lengths = self.specaug(feats, feats_lengths)
        if self.normalize is not None:
            feats, feats_lengths = self.normalize(feats, feats_lengths)
        return feats, feats_lengths

    def encode(self, speech: torch.Tensor, speech_lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Features + full-utterance (streaming-mode) encoder pass.

        Returns:
            Tensor: (B, T', D) encoder output.
            Tensor: (B,) valid encoder frames.
        """
        feats, feats_lengths = self.extract_feats(speech, speech_lengths)
        enc_out, enc_lens, _ = self.encoder(feats, feats_lengths)
        return enc_out, enc_lens

    # ------------------------------------------------------------------ training
    def forward(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        lang: Optional[torch.Tensor] = None,
        lang_lengths: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Tuple[torch.Tensor, Dict[str, Optional[torch.Tensor]], torch.Tensor]:
        """Transducer (+ CTC) loss of a batch.

        Args:
            speech (Tensor): (B, N)
            speech_lengths (Tensor): (B,)
            text (Tensor): (B, U) label ids padded with -1.
            text_lengths (Tensor): (B,)
            lang (Tensor): (B, 1) language ids; read by an installed pathway hook, unused here.
            lang_lengths (Tensor): (B,) unused.
            kwargs: other data entries (e.g. ``utt_id``), unused.
        Returns:
            Tensor: scalar loss.
            dict: ``loss``, ``loss_transducer``, ``loss_ctc`` (with CTC), ``cer``/``wer`` (validation).
            Tensor: batch size, the weight of this batch.
        """
        if text_lengths.dim() != 1 or speech.size(0) != text.size(0):
            raise ValueError(f"batch size mismatch: speech {tuple(speech.shape)}, text {tuple(text.shape)}")
        batch_size = speech.size(0)
        text = text[:, : int(text_lengths.max())]
        enc_out, enc_lens = self.encode(speech, speech_lengths)

        stats: Dict[str, Optional[torch.Tensor]] = {}
        loss = torch.zeros((), device=enc_out.device)
        if self.transducer_weight > 0.0:
            loss_transducer = self._transducer_loss(enc_out, enc_lens, text, text_lengths)
            loss = loss + self.transducer_weight * loss_transducer
            stats["loss_transducer"] = loss_transducer.detach()
        if self.ctc is not None:
            loss_ctc = self.ctc(enc_out, enc_lens, text, text_lengths)
            loss = loss + self.ctc_weight * loss_ctc
            stats["loss_ctc"] = loss_ctc.detach()
        if not self.training and (self.report_cer or self.report_wer) and self.transducer_weight > 0.0:
            cer, wer = self._error_rates(enc_out, enc_lens, text, text_lengths)
            if self.report_cer:
                stats["cer"] = cer
            if self.report_wer:
                stats["wer"] = wer
        stats["loss"] = loss.detach()
        loss, stats, weight = force_gatherable((loss, stats, batch_size), loss.device)
        return loss, stats, weight

    def _transducer_loss(
        self, enc_out: torch.Tensor, enc_lens: torch.Tensor, text: torch.Tensor, text_lengths: torch.Tensor
    ) -> torch.Tensor:
        """Mean per-utterance RNN-T loss.

        Args:
            enc_out (Tensor): (B, T', D)
            enc_lens (Tensor): (B,)
            text (Tensor): (B, U) padded with -1.
            text_lengths (Tensor): (B,)
        """
        if int(enc_lens.min()) < 1:
            raise ValueError(
                f"an utterance is shorter than one encoder frame (encoder lengths {enc_lens.tolist()}); "
                "filter short utterances from the training data"
            )
        t_max = int(enc_lens.max())
        pred_out = self.predictor(text)
        logits = self.joiner(enc_out[:, :t_max], pred_out)
        targets = text.masked_fill(text < 0, self.blank_id).to(torch.int32)
        return torchaudio.functional.rnnt_loss(
            logits.float(),
            targets,
            enc_lens.to(torch.int32),
            text_lengths.to(torch.int32),
            blank=self.blank_id,
            reduction="mean",
        )

    def _error_rates(
        self, enc_out: torch.Tensor, enc_lens: torch.Tensor, text: torch.Tensor, text_lengths: torch.Tensor
    ) -> Tuple[float, float]:
        """Greedy-decode the batch and score it: character (spaces removed) and word error rates."""
        state = greedy_search(
            self.predictor, self.joiner, enc_out, enc_lens, max_symbols_per_frame=self.max_symbols_per_frame
        )
        char_err = char_tot = word_err = word_tot = 0
        for hyp_ids, ref_row, ref_len in zip(state.tokens, text.tolist(), text_lengths.tolist()):
            hyp = self.ids_to_text(hyp_ids)
            ref = self.ids_to_text(ref_row[:ref_len])
            char_err += editdistance.eval(hyp.replace(" ", ""), ref.replace(" ", ""))
            char_tot += len(ref.replace(" ", ""))
            word_err += editdistance.eval(hyp.split(), ref.split())
            word_tot += len(ref.split())
        return char_err / max(char_tot, 1), word_err / max(word_tot, 1)

    def ids_to_tokens(self, ids: Sequence[int]) -> List[str]:
        """Label ids -> tokens (blank dropped)."""
        return [self.token_list[i] for i in ids if i != self.blank_id]

    def ids_to_text(self, ids: Sequence[int]) -> str:
        """Label ids -> text, language-independently (see :func:`detokenize`)."""
        return detokenize(self.ids_to_tokens(ids), self.sym_space)

    # ------------------------------------------------------------------ collect stats
    def collect_feats(
        self,
        speech: torch.Tensor,
        speech_lengths: torch.Tensor,
        text: Optional[torch.Tensor] = None,
        text_lengths: Optional[torch.Tensor] = None,
        **kwargs,
    ) -> Dict[str, torch.Tensor]:
        """Frontend features for ESPnet's statistics collection (no augmentation, no normalisation).

        Returns:
            dict: ``feats`` (B, T, F), ``feats_lengths`` (B,).
        """
        speech = speech[:, : int(speech_lengths.max())]
        if self.frontend is not None:
            feats, feats_lengths = self.frontend(speech, speech_lengths)
        else:
            feats, feats_lengths = speech, speech_lengths
        return {"feats": feats, "feats_lengths": feats_lengths}
