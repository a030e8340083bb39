"""Search (greedy / beam, resumable per chunk) and incremental feature extraction."""

from __future__ import annotations

import pytest
import torch
from espnet2.asr.frontend.default import DefaultFrontend
from espnet2.layers.utterance_mvn import UtteranceMVN

from espnet_pathways.asr.search import beam_search, greedy_search
from espnet_pathways.asr.streaming_frontend import StreamingFeatureExtractor
from espnet_pathways.asr.text import detokenize
from espnet_pathways.asr.transducer.joiner import Joiner
from espnet_pathways.asr.transducer.predictor import LSTMPredictor

VOCAB = 9


def parts(seed: int = 0):
    torch.manual_seed(seed)
    predictor = LSTMPredictor(VOCAB, embed_dim=8, hidden_size=12, num_layers=2, dropout=0.0).eval()
    joiner = Joiner(VOCAB, 10, 12, joint_size=16).eval()
    with torch.no_grad():  # make non-blank symbols likely enough that hypotheses branch
        joiner.output.bias[0] -= 1.0
    return predictor, joiner


def test_greedy_is_resumable_over_chunks_and_batched():
    predictor, joiner = parts()
    enc = torch.randn(3, 17, 10) * 2
    lens = torch.tensor([17, 11, 5])
    whole = greedy_search(predictor, joiner, enc, lens)
    state = None
    for start in range(0, 17, 4):
        chunk_lens = torch.clamp(lens - start, min=0, max=4)
        state = greedy_search(predictor, joiner, enc[:, start : start + 4], chunk_lens, state)
    assert state.tokens == whole.tokens
    torch.testing.assert_close(state.scores, whole.scores)
    assert any(len(t) > 0 for t in whole.tokens)
    for b in range(3):  # batch result equals single-utterance result
        single = greedy_search(predictor, joiner, enc[b : b + 1, : lens[b]], lens[b : b + 1])
        assert single.tokens[0] == whole.tokens[b]
        torch.testing.assert_close(single.scores, whole.scores[b : b + 1])


def test_symbols_per_frame_cap():
    predictor, joiner = parts()
    with torch.no_grad():
        joiner.output.bias[0] -= 100.0  # blank never wins
    enc = torch.randn(1, 6, 10)
    out = greedy_search(predictor, joiner, enc, torch.tensor([6]), max_symbols_per_frame=2)
    assert len(out.tokens[0]) == 12
    assert 0 not in out.tokens[0]


def test_beam_hypotheses_are_distinct_sorted_and_no_worse_than_narrower_beams():
    predictor, joiner = parts(seed=1)
    enc = torch.randn(20, 10) * 2
    beam1 = beam_search(predictor, joiner, enc, 1)
    beam4 = beam_search(predictor, joiner, enc, 4)
    assert len(beam1) == 1 and len(beam4) == 4
    assert [h.score for h in beam4] == sorted((h.score for h in beam4), reverse=True)
    assert len({h.tokens for h in beam4}) == 4
    assert beam4[0].score >= beam1[0].score - 1e-6
    assert all(0 not in h.tokens for h in beam4)


def test_beam_and_greedy_agree_on_a_confident_model():
    predictor, joiner = parts(seed=3)
    with torch.no_grad():  # sharp posteriors: one path dominates
        joiner.output.weight.mul_(10.0)
    enc = torch.randn(1, 15, 10)
    greedy = greedy_search(predictor, joiner, enc, torch.tensor([15]))
    beam = beam_search(predictor, joiner, enc[0], 3)
    assert list(beam[0].tokens) == greedy.tokens[0]
    assert beam[0].score >= float(greedy.scores[0]) - 1e-5


def test_beam_is_resumable_over_chunks():
    predictor, joiner = parts(seed=2)
    enc = torch.randn(19, 10) * 2
    whole = beam_search(predictor, joiner, enc, 3)
    hyps = None
    for start in range(0, 19, 5):
        hyps = beam_search(predictor, joiner, enc[start : start + 5], 3, hyps)
    assert [h.tokens for h in hyps] == [h.tokens for h in whole]
    assert [h.score for h in hyps] == pytest.approx([h.score for h in whole], abs=1e-5)


def test_predictor_forward_matches_stepwise_infer():
    predictor, _ = parts()
    labels = torch.tensor([[3, 5, 1, -1], [2, 2, 7, 4]])
    full = predictor(labels)
    assert full.shape == (2, 5, 12)
    state, outs = None, []
    tokens = torch.cat([torch.zeros(2, 1, dtype=torch.long), labels.clamp(min=0)], dim=1)
    for u in range(5):
        out, state = predictor.infer(tokens[:, u : u + 1], state)
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, dim=1), full)


@pytest.mark.parametrize("n_samples", [257, 900, 16000, 23457])
@pytest.mark.parametrize("piece", [1, 173, 4000])
def test_streaming_features_equal_whole_utterance_features(n_samples, piece):
    frontend = DefaultFrontend(n_fft=512, win_length=400, hop_length=160, n_mels=40).eval()
    wav = torch.randn(n_samples, generator=torch.Generator().manual_seed(n_samples))
    with torch.no_grad():
        full, lens = frontend(wav.unsqueeze(0), torch.tensor([n_samples]))
    extractor = StreamingFeatureExtractor(frontend)
    step = piece if n_samples < 5000 or piece > 1 else 997  # keep the 1-sample case cheap
    frames = [extractor.accept(wav[i : i + step]) for i in range(0, n_samples, step)]
    frames.append(extractor.finish())
    streamed = torch.cat(frames)
    assert streamed.shape[0] == int(lens[0]) == n_samples // 160 + 1
    torch.testing.assert_close(streamed, full[0], atol=1e-4, rtol=1e-5)
    assert extractor.audio.numel() <= 512 + 4 * 160 + step  # bounded buffer


def test_streaming_features_reject_utterance_normalisation():
    frontend = DefaultFrontend(n_fft=512, hop_length=160, n_mels=40)
    with pytest.raises(ValueError, match="utterance_mvn"):
        StreamingFeatureExtractor(frontend, UtteranceMVN())


def test_detokenize_is_language_independent():
    assert detokenize(["\u2581bon", "jour", "\u2581le", "\u2581monde"]) == "bonjour le monde"
    assert detokenize(["\u2581hallo", "\u2581wereld"]) == "hallo wereld"
    assert detokenize(["c", "i", "a", "o", "<space>", "a"]) == "ciao a"
    assert detokenize([]) == ""
