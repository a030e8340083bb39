"""Packed sparse checkpoints: bit-exact round trips, sizes against their bounds, bad files."""

import io
import json
import re
from types import SimpleNamespace

import pytest
import torch

from espnet_pathways.masks import MaskMismatchError, MaskSet, magnitude_masks
from espnet_pathways.masks import sparse_checkpoint as sc
from espnet_pathways.masks.layout import state_key
from espnet_pathways.masks.sparse_checkpoint import SparseCheckpointError, load_sparse, save_sparse

LANGS = ("en", "fr", "it", "nl")


def _masks(weights, overlap_noise: float, sparsity: float = 0.7):
    """Magnitude masks per language of |θ| times language noise: smaller noise, more overlap."""
    out = {}
    for i, lang in enumerate(LANGS):
        gen = torch.Generator().manual_seed(i)
        scores = {n: w.abs() * torch.exp(overlap_noise * torch.randn(w.shape, generator=gen)) for n, w in weights.items()}
        out[lang] = magnitude_masks(scores, sparsity)
    return MaskSet(out)


def _multilingual(shapes=((96, 64), (64, 96), (32, 64)), noise=0.3):
    """A state dict as an attached handle saves it: full θ (zero outside the union), the mask buffers,
    dense biases and norms, integer and boolean buffers of the pruning engine."""
    weights = {f"l{i}.weight": torch.randn(shape) for i, shape in enumerate(shapes)}
    masks = _masks(weights, noise)
    union = masks.union()
    state = {}
    for name, w in weights.items():
        state[name] = w.masked_fill(~union[name], 0.0)  # as the handle zeroes pruned weights
        state[name.replace("weight", "bias")] = torch.randn(w.shape[0])
    state["norm.weight"] = torch.ones(64)
    for lang in LANGS:
        for name in weights:
            state[state_key(lang, name)] = masks[lang][name].clone()
    state["pathway_pruning.step"] = torch.tensor(300)
    state["pathway_pruning.frozen"] = torch.tensor(True)
    return state, masks


def _same(got, want):
    assert list(got) == list(want)
    for name, value in want.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        assert torch.equal(got[name], value), name


def _dense_size(state) -> int:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return len(buffer.getvalue())


def test_multilingual_round_trip_is_bit_exact_with_masks(tmp_path):
    state, masks = _multilingual()
    state["l0.weight"][~masks.union()["l0.weight"]] = -0.0  # -0.0 outside the masks (θ * m), and a weight
    assert torch.signbit(state["l0.weight"][~masks.union()["l0.weight"]]).any()
    outside = (~masks.union()["l2.weight"]).nonzero()[0]  # outside every mask (soft mode)
    state["l2.weight"][tuple(outside)] = 1.25
    got = load_sparse(save_sparse(tmp_path / "m.pws", state, extra={"note": "x"}))
    _same(got.state, state)
    for name in ("l0.weight", "l2.weight"):  # bit patterns, -0.0 included
        assert torch.equal(got.state[name].view(torch.int32), state[name].view(torch.int32))
    assert got.masks == masks and got.masks.languages == LANGS
    assert got.header["extra"] == {"note": "x"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary file left behind"


def test_one_language_round_trip_and_fp16(tmp_path):
    state, masks = _multilingual()
    fr = masks["fr"]
    one = {n: (v.masked_fill(~fr[n], 0.0) if n in fr else v) for n, v in state.items() if not n.startswith("pathway_masks.")}
    got = load_sparse(save_sparse(tmp_path / "fr.pws", one, fr))
    _same(got.state, one)
    assert got.masks is None and got.header["languages"] == []
    half = load_sparse(save_sparse(tmp_path / "fr16.pws", one, fr, fp16=True)).state
    for name, value in one.items():
        assert half[name].dtype == value.dtype
        torch.testing.assert_close(half[name], value.to(torch.float16).to(value.dtype) if value.is_floating_point() else value)
        if name in fr:
            assert torch.equal(half[name] != 0, value != 0), name


def test_sizes_meet_their_bounds(tmp_path):
    """70% sparsity, 4 languages: one language <= 0.35x (fp16: 0.2x) of its dense checkpoint; the union-packed
    model within 3% of values(union) + 1 bit per weight + 1 bit per union weight per language + dense rest."""
    state, masks = _multilingual(shapes=((256, 256),) * 4, noise=0.3)
    fr = masks["fr"]
    one = {n: (v.masked_fill(~fr[n], 0.0) if n in fr else v) for n, v in state.items() if not n.startswith("pathway_masks.")}
    dense = _dense_size(one)
    assert save_sparse(tmp_path / "fr.pws", one, fr).stat().st_size <= 0.35 * dense
    assert save_sparse(tmp_path / "fr16.pws", one, fr, fp16=True).stat().st_size <= 0.2 * dense

    union = sum(int(m.sum()) for m in masks.union().values())
    weights = masks.num_prunable
    rest = sum(v.numel() * v.element_size() for n, v in state.items() if n not in fr and not n.startswith("pathway_masks."))
    bound = 4 * union + weights / 8 + len(LANGS) * union / 8 + rest
    size = save_sparse(tmp_path / "all.pws", state).stat().st_size
    assert bound <= size <= 1.03 * bound
    assert 0.3 < union / weights < 0.5, "overlap not in the regime the bound is about"


def test_a_mask_that_does_not_fit_is_refused(tmp_path):
    state, masks = _multilingual()
    with pytest.raises(MaskMismatchError, match="'l0.weight' has shape"):
        save_sparse(tmp_path / "x.pws", state, {"l0.weight": torch.ones(5, 5, dtype=torch.bool)})
    with pytest.raises(MaskMismatchError, match="no tensor 'l9.weight'"):
        save_sparse(tmp_path / "x.pws", state, {"l9.weight": torch.ones(5, dtype=torch.bool)})
    plain = {n: v for n, v in state.items() if not n.startswith("pathway_masks.")}
    with pytest.raises(ValueError, match="no pathway masks"):
        save_sparse(tmp_path / "x.pws", plain)
    with pytest.raises(ValueError, match="only floating-point"):
        save_sparse(tmp_path / "x.pws", plain, {"pathway_pruning.step": torch.tensor(True)})
    assert list(tmp_path.iterdir()) == []


def test_every_truncation_and_corruption_is_refused_naming_the_file(tmp_path):
    state, _ = _multilingual(shapes=((8, 8), (4, 8)))
    data = save_sparse(tmp_path / "m.pws", state).read_bytes()
    bad = tmp_path / "bad.pws"
    for size in range(len(data)):
        bad.write_bytes(data[:size])
        with pytest.raises(SparseCheckpointError, match=re.escape(str(bad))):
            load_sparse(bad)
    for offset in (len(data) - 1, 40):
        flipped = bytearray(data)
        flipped[offset] ^= 0x10
        bad.write_bytes(bytes(flipped))
        with pytest.raises(SparseCheckpointError, match=re.escape(str(bad)) + ".*checksum"):
            load_sparse(bad)
    bad.write_bytes(b"PWSPARS\x07" + data[8:])
    with pytest.raises(SparseCheckpointError, match=re.escape(str(bad)) + ".*version 7"):
        load_sparse(bad)
    bad.write_bytes(b"PWMASKS\x02" + data[8:])
    with pytest.raises(SparseCheckpointError, match="not an espnet_pathways sparse checkpoint"):
        load_sparse(bad)
    with pytest.raises(FileNotFoundError, match="missing.pws"):
        load_sparse(tmp_path / "missing.pws")


@pytest.mark.parametrize(
    "edit",
    [
        lambda h: h["tensors"][0].update(kept=h["tensors"][0]["kept"] + 1),
        lambda h: h["tensors"][0].update(shape=[9, 8]),
        lambda h: h["tensors"][0].update(stored="float64"),
        lambda h: h["tensors"][0].update(dtype="no_such_dtype"),
        lambda h: h.update(languages=h["languages"] + ["de"]),
    ],
    ids=["kept", "shape", "stored_dtype", "unknown_dtype", "extra_language"],
)
def test_header_sizes_must_match_the_payload(edit, tmp_path, monkeypatch):
    """A buggy writer's header (valid checksum) whose declared sizes do not add up is refused before reading."""
    state, _ = _multilingual(shapes=((8, 8), (4, 8)))

    def dumps(header, **kwargs):
        edit(header)
        return json.dumps(header, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(sc, "json", SimpleNamespace(dumps=dumps, loads=json.loads))
        path = save_sparse(tmp_path / "m.pws", state)
    with pytest.raises(SparseCheckpointError, match=re.escape(str(path)) + ".*(payload size mismatch|corrupted header)"):
        load_sparse(path)
