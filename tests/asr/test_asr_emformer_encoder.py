"""EmformerEncoder: chunked streaming (infer with carried state) equals the full-utterance forward."""

from __future__ import annotations

import pytest
import torch

from espnet_pathways.asr.encoder.emformer import EmformerEncoder, iter_chunks

ATOL = 1e-5

CONFIGS = {
    # name: encoder kwargs (besides input_size / small model dims)
    "s4_seg4_rc1": dict(time_reduction_stride=4, segment_length=4, right_context_length=1),
    "s6_seg4_rc1_lc8": dict(time_reduction_stride=6, segment_length=4, right_context_length=1, left_context_length=8),
    "s4_seg2_rc0_mem3": dict(
        time_reduction_stride=4, segment_length=2, right_context_length=0, left_context_length=3, max_memory_size=3
    ),
    "s3_seg5_rc2_conv": dict(
        time_reduction_stride=3,
        segment_length=5,
        right_context_length=2,
        left_context_length=6,
        conv_layers=2,
        conv_channels=12,
        conv_kernel_size=4,
    ),
}


def make_encoder(**kwargs) -> EmformerEncoder:
    torch.manual_seed(1)
    enc = EmformerEncoder(10, output_size=24, num_layers=2, num_heads=4, ffn_dim=48, dropout=0.0, **kwargs)
    return enc.eval()


def stream(enc: EmformerEncoder, xs: torch.Tensor, ilens: torch.Tensor):
    """Concatenate the valid outputs of ``infer`` over consecutive chunks."""
    outs, lens, state = [], torch.zeros_like(ilens), None
    for chunk, lengths in iter_chunks(xs, ilens, enc.chunk_length, enc.chunk_shift, enc.stride):
        out, out_lens, state = enc.infer(chunk, lengths, state)
        outs.append(out)
        lens = lens + out_lens
    if not outs:
        return torch.zeros(xs.size(0), 0, enc.output_size()), lens
    return torch.cat(outs, dim=1), lens


def padded_batch(lengths, feat=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    xs = torch.randn(len(lengths), max(lengths), feat, generator=gen)
    for b, n in enumerate(lengths):
        xs[b, n:] = 0.0
    return xs, torch.tensor(lengths)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("lengths", [[97], [40, 97, 13], [24, 24]])
def test_chunked_infer_equals_forward(name, lengths):
    enc = make_encoder(**CONFIGS[name])
    xs, ilens = padded_batch(lengths)
    with torch.no_grad():
        full, full_lens, _ = enc(xs, ilens)
        streamed, streamed_lens = stream(enc, xs, ilens)
    assert full_lens.tolist() == [n // enc.stride for n in lengths]
    assert streamed_lens.tolist() == full_lens.tolist()
    for b, n in enumerate(full_lens.tolist()):
        torch.testing.assert_close(streamed[b, :n], full[b, :n], atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_batch_forward_equals_single_forward(name):
    enc = make_encoder(**CONFIGS[name])
    lengths = [61, 100, 23]
    xs, ilens = padded_batch(lengths, seed=3)
    with torch.no_grad():
        batch_out, batch_lens, _ = enc(xs, ilens)
        for b, n in enumerate(lengths):
            single, single_lens, _ = enc(xs[b : b + 1, :n], ilens[b : b + 1])
            assert int(single_lens[0]) == int(batch_lens[b])
            torch.testing.assert_close(single[0], batch_out[b, : single.size(1)], atol=ATOL, rtol=0)


def test_output_is_causal_up_to_right_context():
    """Changing input after segment k's look-ahead leaves segment k's output unchanged."""
    enc = make_encoder(**CONFIGS["s4_seg4_rc1"])
    xs, ilens = padded_batch([120])
    seg_frames = enc.segment_length * enc.stride  # 16 input frames per segment
    cut = seg_frames * 2 + enc.right_context_length * enc.stride  # end of segment 1's look-ahead
    changed = xs.clone()
    changed[:, cut:] += 5.0
    with torch.no_grad():
        a, _, _ = enc(xs, ilens)
        b, _, _ = enc(changed, ilens)
    torch.testing.assert_close(a[:, : 2 * enc.segment_length], b[:, : 2 * enc.segment_length], atol=ATOL, rtol=0)
    assert not torch.allclose(a[:, 2 * enc.segment_length :], b[:, 2 * enc.segment_length :])


def test_input_shorter_than_one_encoder_frame():
    enc = make_encoder(**CONFIGS["s6_seg4_rc1_lc8"])
    xs, ilens = padded_batch([5])
    with torch.no_grad():
        out, olens, _ = enc(xs, ilens)
        streamed, slens = stream(enc, xs, ilens)
    assert out.shape == (1, 0, 24) and olens.tolist() == [0]
    assert streamed.shape[1] == 0 and slens.tolist() == [0]


def test_shapes_and_errors():
    enc = make_encoder(**CONFIGS["s4_seg4_rc1"])
    assert enc.output_size() == 24
    assert enc.chunk_length == 20 and enc.chunk_shift == 16
    xs, ilens = padded_batch([50, 30])
    out, olens, states = enc(xs, ilens)
    assert out.shape == (2, 12, 24) and olens.tolist() == [12, 7] and states is None
    assert ilens.tolist() == [50, 30]  # caller's lengths untouched
    with pytest.raises(ValueError, match="prev_states"):
        enc(xs, ilens, prev_states=torch.zeros(1))
    with pytest.raises(ValueError, match="chunks of 20"):
        enc.infer(xs[:, :19], torch.tensor([19, 19]), None)
    with pytest.raises(ValueError, match="divisible"):
        EmformerEncoder(10, output_size=30, num_heads=4)
