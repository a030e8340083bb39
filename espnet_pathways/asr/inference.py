"""Python decoding API in ESPnet's style: whole utterances and audio streams.

Dimension legend: N: samples, T: feature frames, T': encoder frames.

Usage::

    s2t = Speech2Text("exp/asr/config.yaml", "exp/asr/valid.loss.best.pth", beam_size=4)
    best = s2t(waveform, lang="fr")[0]            # DecodingResult(text, tokens, token_int, score)

    stream = StreamingSpeech2Text(s2t)            # shares the model
    stream.reset(lang="fr")
    for piece in audio_pieces:
        partial = stream(piece)[0].text           # hypothesis so far
    final = stream(last_piece, is_final=True)[0]

``streaming=True`` (default) encodes segment by segment with carried state (what a live stream
does); ``streaming=False`` runs the encoder's full-utterance streaming-mode pass. Both give the
same encoder output up to float rounding. ``beam_size=1`` is greedy search.

Language: ``lang`` (a code of the model's ``lang_list`` or an integer id) selects the pathway when
the model carries pathway masks (``model.pathway_masks``); an unknown code is an error.

``lang="auto"`` decodes an utterance of unknown language: every pathway of the model (the languages
of its masks, in ``lang_list`` order) decodes it, each with its own encoder and search state (the
masks change the encoder), and the hypothesis with the best :func:`lid_score` wins; its language is
``DecodingResult.lang``. With segment-by-segment encoding (``streaming=True``) the pathways race
only over the first ``lid_chunks`` encoder chunks, then the best one continues alone
(``lid_chunks=0``: over the whole utterance); ``streaming=False`` always decodes the whole
utterance with every pathway. A dense model, or one with only a shared mask, refuses ``"auto"``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, List, Optional, Sequence, Union

import numpy as np
import torch

from espnet_pathways.asr.encoder.emformer import EmformerEncoder, EmformerEncoderState, iter_chunks
from espnet_pathways.asr import loader
from espnet_pathways.asr.search.beam import BeamHypothesis, beam_search
from espnet_pathways.asr.search.greedy import GreedyState, greedy_search
from espnet_pathways.asr.streaming_frontend import StreamingFeatureExtractor
from espnet_pathways.asr.transducer.model import PathwaysTransducerModel
from espnet_pathways.utils.lang_list import lang_code_to_id, lang_id_to_code

__all__ = [
    "AUTO_LANG",
    "DEFAULT_LID_CHUNKS",
    "DecodingResult",
    "Speech2Text",
    "StreamingSpeech2Text",
    "LangSpec",
    "activate_pathway",
    "lid_score",
]

LangSpec = Union[None, str, int]
_DTYPES = {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64}
AUTO_LANG = "auto"
"""``lang`` value that identifies the language by decoding with every pathway."""
DEFAULT_LID_CHUNKS = 8
"""Encoder chunks the pathways race over before streaming ``lang="auto"`` keeps one: the knee of the
language-identification accuracy measured on MLS-shaped dev data (README, "Decoding an unknown language")."""


@dataclasses.dataclass
class DecodingResult:
    """One hypothesis: detokenised text, tokens, token ids, log-probability score and the language
    of the pathway that produced it (None when no language was selected)."""

    text: str
    tokens: List[str]
    token_int: List[int]
    score: float
    lang: Optional[str] = None


def lid_score(hyp: DecodingResult) -> float:
    """Length-normalised score that ``lang="auto"`` compares across pathways: ``score / (U + 1)``.

    ``hyp.score`` is the hypothesis' log-probability (every blank and label decision of the search, so
    over the same ``T'`` encoder frames for every pathway), ``U`` its labels. The raw sum favours a
    pathway that emits fewer labels, and the wrong languages' pathways emit fewer on average (in the
    README's measurement); ``/ (U + 1)`` rewards emitting labels. Chosen by measurement:
    among the raw sum, ``score / (U + 1)`` and the mean per decision ``score / (T' + U)``, it gave
    the best identification accuracy at every number of chunks on dev data (README).
    """
    return hyp.score / (len(hyp.token_int) + 1)


def activate_pathway(model: torch.nn.Module, code: Optional[str]) -> None:
    """Switch a masked model (``model.pathway_masks``) to language ``code``; no-op for a dense model.

    Without a language, a mask set with a shared mask ``"*"`` uses it; otherwise it is an error.
    """
    handle = getattr(model, "pathway_masks", None)
    if handle is None:
        return
    try:
        handle.activate(code)  # None: the shared mask
    except KeyError:
        if code is not None:
            raise
        raise ValueError(
            f"the model has pathway masks for {list(handle.languages)}: "
            "choose a language with --lang or a 'lang' data entry"
        ) from None


class Speech2Text:
    """Decode whole utterances with a trained :class:`PathwaysTransducerModel`.

    The model is built by the task's loader (:mod:`espnet_pathways.asr.loader`).

    Args:
        asr_train_config: the training run's ``config.yaml``.
        asr_model_file: model parameters (``*.pth``).
        device: "cpu" or "cuda".
        dtype: "float32", "float16" or "float64".
        beam_size: 1 = greedy search.
        nbest: hypotheses returned (<= beam_size; 1 with greedy search).
        streaming: encode segment by segment with carried state (True) or in one pass (False).
        max_symbols_per_frame: cap on labels emitted at one encoder frame.
        lang: default language for calls without ``lang`` (``"auto"``: identify it).
        lid_chunks: with ``lang="auto"`` and ``streaming``, encoder chunks decoded by every pathway
            before the best one continues alone (0: the whole utterance).
    """

    def __init__(
        self,
        asr_train_config: Union[str, Path],
        asr_model_file: Optional[Union[str, Path]] = None,
        device: str = "cpu",
        dtype: str = "float32",
        beam_size: int = 1,
        nbest: int = 1,
        streaming: bool = True,
        max_symbols_per_frame: int = 3,
        lang: LangSpec = None,
        lid_chunks: int = DEFAULT_LID_CHUNKS,
    ) -> None:
        model, train_args = loader.MODEL_LOADER(asr_train_config, asr_model_file, device)
        if not isinstance(model, PathwaysTransducerModel):
            raise ValueError(
                f"{asr_train_config}: model is {type(model).__name__}, not a pathways_transducer; "
                "decode it with espnet2.bin.asr_inference"
            )
        self._setup(model, getattr(train_args, "lang_list", None), device, dtype, beam_size, nbest, streaming,
                    max_symbols_per_frame, lang, lid_chunks)  # fmt: skip
        self.train_args = train_args

    @classmethod
    def from_model(
        cls,
        model: PathwaysTransducerModel,
        lang_list: Optional[Sequence[str]] = None,
        device: str = "cpu",
        dtype: str = "float32",
        beam_size: int = 1,
        nbest: int = 1,
        streaming: bool = True,
        max_symbols_per_frame: int = 3,
        lang: LangSpec = None,
        lid_chunks: int = DEFAULT_LID_CHUNKS,
    ) -> "Speech2Text":
        """Wrap an already built model (e.g. in benchmarks); arguments as for ``__init__``."""
        self = cls.__new__(cls)
        self._setup(model, lang_list, device, dtype, beam_size, nbest, streaming, max_symbols_per_frame, lang,
                    lid_chunks)  # fmt: skip
        self.train_args = None
        return self

    def _setup(
        self,
        model: PathwaysTransducerModel,
        lang_list: Optional[Sequence[str]],
        device: str,
        dtype: str,
        beam_size: int,
        nbest: int,
        streaming: bool,
        max_symbols_per_frame: int,
        lang: LangSpec,
        lid_chunks: int,
    ) -> None:
        if beam_size < 1:
            raise ValueError(f"--beam_size must be >= 1, got {beam_size}")
        if nbest < 1 or nbest > beam_size:
            raise ValueError(f"--nbest must be between 1 and --beam_size ({beam_size}), got {nbest}")
        if dtype not in _DTYPES:
            raise ValueError(f"--dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
        if lid_chunks < 0:
            raise ValueError(f"--lid_chunks must be >= 0 (0: the whole utterance), got {lid_chunks}")
        if model.frontend is None:
            raise ValueError("decoding needs a model with a frontend (waveform input)")
        self.model = model.to(device=device, dtype=_DTYPES[dtype]).eval()
        self.device = device
        self.dtype = _DTYPES[dtype]
        self.beam_size = beam_size
        self.nbest = nbest
        self.streaming = streaming
        self.max_symbols_per_frame = max_symbols_per_frame
        self.lid_chunks = lid_chunks
        self.lang_list: Optional[List[str]] = list(lang_list) if lang_list is not None else None
        self.default_lang = lang
        if lang is not None:
            self.resolve_lang(lang)

    # ------------------------------------------------------------------ language / pathway
    def resolve_lang(self, lang: LangSpec) -> Optional[str]:
        """Language code of ``lang`` (code, id or ``"auto"``); a clear error when the model does not know it."""
        if lang is None:
            return None
        if lang == AUTO_LANG:
            self.pathway_languages()
            return AUTO_LANG
        if isinstance(lang, (int, np.integer)):
            if not self.lang_list:
                raise ValueError(f"language id {int(lang)} given, but the model's config has no lang_list")
            return lang_id_to_code(int(lang), self.lang_list, where="lang")
        lang_code_to_id(str(lang), self.lang_list, where="--lang")
        return str(lang)

    def pathway_languages(self) -> List[str]:
        """The languages ``lang="auto"`` tries: those with their own mask, in ``lang_list`` order.

        Raises:
            ValueError: for a dense model or one whose only mask is the shared one.
        """
        handle = getattr(self.model, "pathway_masks", None)
        own = [] if handle is None else [l for l in handle.languages if l in handle.lang_list]
        if not own:
            what = "no pathway masks (a dense model)" if handle is None else "only a shared mask"
            raise ValueError(
                f"--lang {AUTO_LANG} needs a model with a pathway mask per language, but this one has {what}: "
                "decode with --lang CODE"
            )
        order = self.lang_list or list(handle.lang_list)
        return sorted(own, key=lambda l: order.index(l) if l in order else len(order))

    def select_pathway(self, lang: LangSpec = None) -> Optional[str]:
        """Activate the pathway of ``lang`` (or the default language) if the model has pathway masks.

        Returns:
            The language code in use (None when no language is known; ``"auto"``: nothing activated).
        """
        code = self.resolve_lang(lang if lang is not None else self.default_lang)
        if code != AUTO_LANG:
            activate_pathway(self.model, code)
        return code

    # ------------------------------------------------------------------ decoding
    def _results(
        self, token_ids: Sequence[Sequence[int]], scores: Sequence[float], lang: Optional[str]
    ) -> List[DecodingResult]:
        out = []
        for ids, score in zip(token_ids, scores):
            ids = [int(i) for i in ids]
            out.append(
                DecodingResult(self.model.ids_to_text(ids), self.model.ids_to_tokens(ids), ids, float(score), lang)
            )
        return out

    def search(self, enc_out: torch.Tensor, enc_len: int, state=None):
        """Continue the search over (T', D) encoder frames; returns the new search state."""
        enc_out = enc_out[:enc_len]
        if self.beam_size == 1:
            return greedy_search(
                self.model.predictor,
                self.model.joiner,
                enc_out.unsqueeze(0),
                torch.tensor([enc_len], device=enc_out.device),
                state,
                self.max_symbols_per_frame,
            )
        return beam_search(
            self.model.predictor, self.model.joiner, enc_out, self.beam_size, state, self.max_symbols_per_frame
        )

    def finalize(self, state, lang: Optional[str] = None) -> List[DecodingResult]:
        """N-best results of a search state (empty hypothesis for a search that saw no frame),
        labelled with the language ``lang`` of the pathway that searched."""
        if state is None:
            return self._results([[]], [0.0], lang)
        if isinstance(state, GreedyState):
            return self._results(state.tokens[:1], state.scores[:1].tolist(), lang)
        hyps: List[BeamHypothesis] = state[: self.nbest]
        return self._results([h.tokens for h in hyps], [h.score for h in hyps], lang)

    @torch.no_grad()
    def __call__(self, speech: Union[torch.Tensor, np.ndarray], lang: LangSpec = None) -> List[DecodingResult]:
        """Decode one utterance.

        Args:
            speech: (N,) waveform (or (1, N)).
            lang: language code or id (selects the pathway of a masked model), or ``"auto"``.
        Returns:
            list of DecodingResult: n-best, best first.
        """
        code = self.resolve_lang(lang if lang is not None else self.default_lang)
        speech = torch.as_tensor(np.asarray(speech) if not isinstance(speech, torch.Tensor) else speech)
        speech = speech.reshape(-1).to(device=self.device, dtype=self.dtype)
        feats, n_frames = self._features(speech)
        if self.streaming:
            stream = StreamingSpeech2Text(self)
            stream.reset(code)
            return stream.decode_features(feats, n_frames)
        if code != AUTO_LANG:
            activate_pathway(self.model, code)
            return self._decode_whole(feats, n_frames, code)
        runs = []
        for candidate in self.pathway_languages():
            activate_pathway(self.model, candidate)
            runs.append(self._decode_whole(feats, n_frames, candidate))
        return max(runs, key=lambda run: lid_score(run[0]))

    @torch.no_grad()
    def decode_batch(
        self, speech: torch.Tensor, speech_lengths: torch.Tensor, lang: LangSpec = None
    ) -> List[List[DecodingResult]]:
        """Decode a batch of utterances of one language; the same results as one call per utterance.

        Greedy search runs the batch together: features per utterance (padding does not change an
        utterance's last frames), then one padded encoder pass (or one segment of every utterance at
        a time when ``streaming``) and a batched search. Beam search and ``lang="auto"`` decode the
        utterances one by one.

        Args:
            speech (Tensor): (B, N) zero-padded waveforms.
            speech_lengths (Tensor): (B,) samples of each utterance.
            lang: language code or id of every utterance (selects the pathway).
        Returns:
            list (B) of n-best lists, best first.
        """
        code = self.resolve_lang(lang if lang is not None else self.default_lang)
        waves = [speech[i, : int(n)] for i, n in enumerate(speech_lengths)]
        if self.beam_size > 1 or code == AUTO_LANG:
            return [self(wave, lang=code) for wave in waves]
        feats = [self._features(wave.reshape(-1).to(device=self.device, dtype=self.dtype)) for wave in waves]
        frames = torch.tensor([n for _, n in feats], device=self.device)
        state = None
        if int(frames.max()) > 0:
            padded = torch.nn.utils.rnn.pad_sequence([f[:n] for f, n in feats], batch_first=True)
            activate_pathway(self.model, code)
            state = self._greedy_streaming(padded, frames) if self.streaming else self._greedy_whole(padded, frames)
        if state is None:  # no utterance as long as one encoder frame
            return [self.finalize(None, code) for _ in waves]
        return [
            self._results([tokens], [score], code)
            for tokens, score in zip(state.tokens, state.scores.tolist())
        ]

    def _greedy_whole(self, feats: torch.Tensor, frames: torch.Tensor) -> GreedyState:
        """Greedy search after one padded encoder pass over (B, T, F) features of ``frames`` (B,)."""
        enc_out, enc_lens, _ = self.model.encoder(feats, frames)
        return greedy_search(self.model.predictor, self.model.joiner, enc_out, enc_lens, None,
                             self.max_symbols_per_frame)  # fmt: skip

    def _greedy_streaming(self, feats: torch.Tensor, frames: torch.Tensor) -> Optional[GreedyState]:
        """Greedy search segment by segment over (B, T, F) features of ``frames`` (B,); an utterance
        that has ended gets empty chunks, which the search skips. None when no chunk is long enough
        for one encoder frame."""
        encoder = self.model.encoder
        if not isinstance(encoder, EmformerEncoder):
            raise ValueError(f"streaming needs the emformer encoder, got {type(encoder).__name__}")
        enc_state, search_state = None, None
        for chunk, lengths in iter_chunks(feats, frames, encoder.chunk_length, encoder.chunk_shift, encoder.stride):
            out, out_lens, enc_state = encoder.infer(chunk, lengths, enc_state)
            search_state = greedy_search(self.model.predictor, self.model.joiner, out, out_lens, search_state,
                                         self.max_symbols_per_frame)  # fmt: skip
        return search_state

    def _decode_whole(self, feats: torch.Tensor, n_frames: int, lang: Optional[str]) -> List[DecodingResult]:
        """One-pass encoding and search with the active pathway."""
        if n_frames == 0:
            return self.finalize(None, lang)
        enc_out, enc_lens, _ = self.model.encoder(feats.unsqueeze(0), torch.tensor([n_frames], device=self.device))
        if int(enc_lens[0]) == 0:
            return self.finalize(None, lang)
        return self.finalize(self.search(enc_out[0], int(enc_lens[0])), lang)

    def _features(self, speech: torch.Tensor):
        """Whole-utterance features (T, F) and T; none for audio too short for one STFT frame."""
        frontend = self.model.frontend
        n_fft = getattr(getattr(frontend, "stft", None), "n_fft", 0)
        if speech.numel() <= n_fft // 2:
            return speech.new_zeros(0, 1), 0
        self.model.eval()
        feats, lens = self.model.extract_feats(speech.unsqueeze(0), torch.tensor([speech.numel()], device=self.device))
        return feats[0, : int(lens[0])], int(lens[0])


@dataclasses.dataclass
class _Track:
    """One pathway's decoding of the current utterance (masks change the encoder, so each pathway
    carries its own encoder state as well as its search state)."""

    lang: Optional[str]
    enc_state: Optional[EmformerEncoderState] = None
    search_state: Any = None


class StreamingSpeech2Text:
    """Decode an audio stream chunk by chunk, returning partial hypotheses.

    Audio of any chunk size goes in; features are computed incrementally, the encoder runs one
    segment (``(S + R) * s`` feature frames, advancing ``S * s``) at a time with carried state and
    the search continues from its previous state. The result after ``is_final=True`` equals the
    whole-utterance decoding of :class:`Speech2Text` with ``streaming=True``.

    With ``lang="auto"`` every pathway runs its own encoder and search over the first
    ``speech2text.lid_chunks`` chunks (partial results: the best one so far by :func:`lid_score`);
    then the best pathway continues alone. A stream that ends sooner (or ``lid_chunks=0``) picks at
    its end.

    Args:
        speech2text: a loaded :class:`Speech2Text` (model, search settings and language list).
    """

    def __init__(self, speech2text: Speech2Text) -> None:
        encoder = speech2text.model.encoder
        if not isinstance(encoder, EmformerEncoder):
            raise ValueError(f"streaming needs the emformer encoder, got {type(encoder).__name__}")
        self.s2t = speech2text
        self.encoder = encoder
        self.reset()

    def reset(self, lang: LangSpec = None) -> None:
        """Start a new utterance; ``lang`` (or the default language) is applied at its first audio."""
        self.lang = lang
        self.tracks: Optional[List[_Track]] = None  # set at the first audio: one per pathway decoding
        self.chunks = 0  # encoder chunks run
        self.pending = torch.zeros(0, 0)  # feature frames not yet consumed by a full chunk
        self.consumed = 0  # feature frames the encoder has advanced past
        self.features: Optional[StreamingFeatureExtractor] = None

    def _start_tracks(self) -> None:
        code = self.s2t.select_pathway(self.lang)
        if code == AUTO_LANG:
            self.tracks = [_Track(lang) for lang in self.s2t.pathway_languages()]
        else:
            self.tracks = [_Track(code)]

    def _track_score(self, track: _Track) -> float:
        return lid_score(self.s2t.finalize(track.search_state)[0])

    def _best_track(self) -> _Track:
        return max(self.tracks, key=self._track_score)  # first in lang_list order on a tie

    def _keep_best(self) -> None:
        best = self._best_track()
        self.tracks = [best]
        activate_pathway(self.s2t.model, best.lang)
        logging.debug(f"language {best.lang} chosen after {self.chunks} chunk(s)")

    def _push(self, feats: torch.Tensor) -> None:
        self.pending = feats if self.pending.numel() == 0 else torch.cat([self.pending, feats])

    def _run_chunk(self, chunk: torch.Tensor, valid: int) -> None:
        racing = len(self.tracks) > 1
        for track in self.tracks:
            if racing:
                activate_pathway(self.s2t.model, track.lang)
            out, out_lens, track.enc_state = self.encoder.infer(
                chunk.unsqueeze(0), torch.tensor([valid], device=chunk.device), track.enc_state
            )
            n = int(out_lens[0])
            if n > 0:
                track.search_state = self.s2t.search(out[0], n, track.search_state)
        self.chunks += 1
        if racing and self.s2t.lid_chunks and self.chunks >= self.s2t.lid_chunks:
            self._keep_best()

    def _run_full_chunks(self) -> None:
        size, shift = self.encoder.chunk_length, self.encoder.chunk_shift
        while self.pending.size(0) >= size:
            self._run_chunk(self.pending[:size], size)
            self.pending = self.pending[shift:]
            self.consumed += shift

    def _run_tail(self) -> None:
        """Flush the last partial chunks exactly as :func:`iter_chunks` cuts the end of an utterance."""
        total = self.consumed + self.pending.size(0)
        usable = (total // self.encoder.stride) * self.encoder.stride
        size, shift = self.encoder.chunk_length, self.encoder.chunk_shift
        while self.consumed < usable:
            piece = self.pending[:size]
            valid = piece.size(0)
            if valid < size:
                piece = torch.nn.functional.pad(piece, (0, 0, 0, size - valid))
            self._run_chunk(piece, valid)
            self.pending = self.pending[shift:]
            self.consumed += shift

    def _final_results(self) -> List[DecodingResult]:
        if len(self.tracks) > 1:
            self._keep_best()
        return self.s2t.finalize(self.tracks[0].search_state, self.tracks[0].lang)

    @torch.no_grad()
    def decode_features(self, feats: torch.Tensor, n_frames: int) -> List[DecodingResult]:
        """Stream precomputed whole-utterance features (T, F) through the encoder and search, in the
        language given to :meth:`reset`; then reset."""
        self._start_tracks()
        for chunk, lengths in iter_chunks(
            feats[:n_frames].unsqueeze(0),
            torch.tensor([n_frames]),
            self.encoder.chunk_length,
            self.encoder.chunk_shift,
            self.encoder.stride,
        ):
            self._run_chunk(chunk[0], int(lengths[0]))
        results = self._final_results()
        self.reset()
        return results

    @torch.no_grad()
    def __call__(self, audio: Union[torch.Tensor, np.ndarray], is_final: bool = False) -> List[DecodingResult]:
        """Add audio; return the hypotheses so far (final ones after ``is_final=True``, then reset).

        Args:
            audio: (N,) waveform piece (may be empty).
            is_final: the stream ends with this piece.
        Returns:
            list of DecodingResult: n-best so far, best first.
        """
        model = self.s2t.model
        if self.tracks is None:
            self._start_tracks()
        if self.features is None:
            self.features = StreamingFeatureExtractor(model.frontend, model.normalize)
        samples = torch.as_tensor(np.asarray(audio) if not isinstance(audio, torch.Tensor) else audio)
        self._push(self.features.accept(samples.reshape(-1).float()).to(self.s2t.device, self.s2t.dtype))
        self._run_full_chunks()
        if not is_final:
            best = self._best_track() if len(self.tracks) > 1 else self.tracks[0]
            return self.s2t.finalize(best.search_state, best.lang)
        self._push(self.features.finish().to(self.s2t.device, self.s2t.dtype))
        self._run_tail()
        results = self._final_results()
        logging.debug(f"stream finished after {self.consumed} feature frames")
        self.reset()
        return results
