"""MaskSet: statistics, set operations, and the packed mask file."""

import json
import os
import re
import struct
import tracemalloc
from types import SimpleNamespace

import pytest
import torch

from espnet_pathways.masks import MaskFileError, MaskMismatchError, MaskSet, magnitude_masks
from espnet_pathways.masks import maskset as maskset_module


def _known():
    a = {"l1.weight": torch.tensor([[1, 1], [0, 0]], dtype=torch.bool), "l2.weight": torch.tensor([1, 0, 0, 0], dtype=torch.bool)}
    b = {"l1.weight": torch.tensor([[1, 0], [1, 0]], dtype=torch.bool), "l2.weight": torch.tensor([1, 1, 1, 1], dtype=torch.bool)}
    return MaskSet({"en": a, "fr": b}, method="test")


def test_statistics_on_known_masks():
    ms = _known()
    assert ms.languages == ("en", "fr") and ms.names == ("l1.weight", "l2.weight")
    assert ms.num_prunable == 8
    assert ms.kept("en") == 3 and ms.sparsity("en") == pytest.approx(5 / 8)
    assert ms.sparsity("fr") == pytest.approx(2 / 8)
    assert ms.sparsity("en", total_params=20) == pytest.approx(5 / 20)
    assert ms.tensor_sparsity("en") == {"l1.weight": pytest.approx(0.5), "l2.weight": pytest.approx(0.75)}
    assert ms.module_sparsity("en") == {"l1": pytest.approx(0.5), "l2": pytest.approx(0.75)}
    union, inter = ms.union(), ms.intersection()
    assert union["l1.weight"].tolist() == [[True, True], [True, False]]
    assert inter["l2.weight"].tolist() == [True, False, False, False]
    langs, overlap = ms.overlap()
    # |en ∩ fr| = 1 + 1 = 2, |en ∪ fr| = 3 + 4 = 7
    assert overlap[0, 1] == pytest.approx(2 / 7) and overlap[1, 0] == overlap[0, 1]
    assert overlap[0, 0] == 1.0


def test_module_sparsity_depth():
    masks = {"enc.layers.0.ff.weight": torch.zeros(4, dtype=torch.bool), "enc.layers.1.ff.weight": torch.ones(4, dtype=torch.bool)}
    ms = MaskSet({"en": masks})
    assert ms.module_sparsity("en", depth=2) == {"enc.layers": pytest.approx(0.5)}


def test_construction_errors():
    with pytest.raises(ValueError):
        MaskSet({})
    with pytest.raises(MaskMismatchError, match="l1.weight"):
        MaskSet({"en": {"l1.weight": torch.ones(2, 2, dtype=torch.bool)}, "fr": {"l1.weight": torch.ones(2, 3, dtype=torch.bool)}})
    with pytest.raises(MaskMismatchError, match="no mask"):
        MaskSet({"en": {"a": torch.ones(2, dtype=torch.bool)}, "fr": {"b": torch.ones(2, dtype=torch.bool)}})
    with pytest.raises(ValueError, match="0 and 1"):
        MaskSet({"en": {"a": torch.tensor([0.5, 1.0])}})
    with pytest.raises(KeyError, match="de"):
        _known()["de"]


def test_save_load_round_trip(tmp_path):
    tensors = {"a.weight": torch.randn(33, 17), "b.weight": torch.randn(5, 3, 7)}
    ms = MaskSet({"en": magnitude_masks(tensors, 0.7), "fr": magnitude_masks(tensors, 0.3), "*": magnitude_masks(tensors, 0.5)}, method="lth")
    path = ms.save(tmp_path / "masks.pwm", extra={"note": "x"})
    loaded = MaskSet.load(path)
    assert loaded == ms
    assert loaded.method == "lth" and loaded.fingerprint == ms.fingerprint
    header = MaskSet.read_header(path)
    assert header["languages"] == ["en", "fr", "*"]
    assert header["sparsity"]["en"] == pytest.approx(ms.sparsity("en"))
    assert header["extra"] == {"note": "x"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary file left behind"


def test_file_is_one_bit_per_weight_per_language(tmp_path):
    tensors = {f"l{i}.weight": torch.randn(256, 256) for i in range(8)}
    ms = MaskSet({l: magnitude_masks(tensors, 0.7) for l in ("en", "fr", "it", "nl")})
    path = ms.save(tmp_path / "m.pwm")
    bits_per_weight = os.path.getsize(path) * 8 / (ms.num_prunable * len(ms.languages))
    assert 1.0 <= bits_per_weight <= 1.02


def test_truncated_and_foreign_files_are_rejected(tmp_path):
    path = _known().save(tmp_path / "m.pwm")
    data = path.read_bytes()
    (tmp_path / "cut.pwm").write_bytes(data[:-1])
    with pytest.raises(MaskFileError, match="truncated payload"):
        MaskSet.load(tmp_path / "cut.pwm")
    (tmp_path / "cut2.pwm").write_bytes(data[:20])
    with pytest.raises(MaskFileError, match="truncated header"):
        MaskSet.load(tmp_path / "cut2.pwm")
    corrupted = bytearray(data)
    corrupted[-1] ^= 0xFF
    (tmp_path / "bad.pwm").write_bytes(bytes(corrupted))
    with pytest.raises(MaskFileError, match="checksum"):
        MaskSet.load(tmp_path / "bad.pwm")
    torch.save({"a": 1}, tmp_path / "foreign.pth")
    with pytest.raises(MaskFileError, match="not an espnet_pathways mask file"):
        MaskSet.load(tmp_path / "foreign.pth")
    with pytest.raises(FileNotFoundError):
        MaskSet.load(tmp_path / "missing.pwm")


def _with_later_tensor():
    """Two languages over a 64x160 tensor followed by another one (whose bits a bad shape would shift)."""
    tensors = {"a.weight": torch.randn(64, 160), "b.weight": torch.randn(8, 8)}
    return MaskSet({"en": magnitude_masks(tensors, 0.7), "fr": magnitude_masks(tensors, 0.3)})


def test_edited_header_is_rejected(tmp_path):
    path = _with_later_tensor().save(tmp_path / "m.pwm")
    data = path.read_bytes()
    assert data.count(b"[64,160]") == 1
    path.write_bytes(data.replace(b"[64,160]", b"[65,160]"))
    for read in (MaskSet.load, MaskSet.read_header):
        with pytest.raises(MaskFileError, match=re.escape(str(path)) + ".*header checksum"):
            read(path)


def test_flipped_header_length_bits_are_rejected_without_allocating(tmp_path):
    data = _known().save(tmp_path / "m.pwm").read_bytes()
    offset = len(maskset_module._MAGIC)
    bad = tmp_path / "bad.pwm"
    tracemalloc.start()
    try:
        for bit in range(64):
            flipped = bytearray(data)
            flipped[offset + bit // 8] ^= 1 << (bit % 8)
            bad.write_bytes(bytes(flipped))
            with pytest.raises(MaskFileError, match=re.escape(str(bad))):
                MaskSet.load(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"reading {len(data)}-byte files allocated {peak} bytes"


def test_every_truncation_is_rejected(tmp_path):
    data = _known().save(tmp_path / "m.pwm").read_bytes()
    cut = tmp_path / "cut.pwm"
    for size in range(len(data)):
        cut.write_bytes(data[:size])
        with pytest.raises(MaskFileError, match=re.escape(str(cut))):
            MaskSet.load(cut)


def _save_with_header_edit(masks, path, edit, monkeypatch):
    """Save ``masks`` with ``edit(header)`` applied just before the header is written (a buggy writer)."""

    def dumps(header, **kwargs):
        edit(header)
        return json.dumps(header, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(maskset_module, "json", SimpleNamespace(dumps=dumps, loads=json.loads))
        return masks.save(path)


@pytest.mark.parametrize(
    "edit",
    [
        lambda h: h["tensors"][0].update(shape=[65, 160]),
        lambda h: h["tensors"].pop(),
        lambda h: h.update(payload_bytes=h["payload_bytes"] + 1),
        lambda h: h["tensors"][0].update(shape=[64, -160]),
        lambda h: h["tensors"][0].update(shape="64x160"),
    ],
    ids=["shape", "tensor_dropped", "payload_bytes", "negative_dim", "not_a_shape"],
)
def test_header_sizes_must_match_the_payload(edit, tmp_path, monkeypatch):
    path = _save_with_header_edit(_with_later_tensor(), tmp_path / "m.pwm", edit, monkeypatch)
    with pytest.raises(MaskFileError, match=re.escape(str(path))):
        MaskSet.load(path)


def test_trailing_bytes_are_rejected(tmp_path):
    path = _known().save(tmp_path / "m.pwm")
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(MaskFileError, match=re.escape(str(path)) + ".*payload size mismatch"):
        MaskSet.load(path)


def test_other_format_versions_are_rejected(tmp_path):
    header = json.dumps({"version": 1, "languages": ["en"], "tensors": [{"name": "a", "shape": [8]}],
                         "payload_bytes": 1, "payload_crc32": 0}).encode()
    for version in (1, 7):
        path = tmp_path / f"v{version}.pwm"
        path.write_bytes(b"PWMASKS" + bytes([version]) + struct.pack("<Q", len(header)) + header + b"\xff")
        with pytest.raises(MaskFileError, match=re.escape(str(path)) + f".*version {version}"):
            MaskSet.load(path)


def test_check_model_names_the_first_offending_tensor():
    ms = _known()
    model = {"l1.weight": torch.zeros(2, 2), "l2.weight": torch.zeros(4), "l2.bias": torch.zeros(4)}
    ms.check_model(model)
    with pytest.raises(MaskMismatchError, match="'l2.weight'.*shape"):
        ms.check_model({**model, "l2.weight": torch.zeros(5)})
    with pytest.raises(MaskMismatchError, match="no tensor 'l1.weight'"):
        ms.check_model({"l2.weight": torch.zeros(4)})
    with pytest.raises(MaskMismatchError, match="fingerprint"):
        MaskSet({l: ms[l] for l in ms}, fingerprint="0123456789abcdef").check_model(model)


def test_failed_save_writes_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(struct, "pack", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        _known().save(tmp_path / "m.pwm")
    assert list(tmp_path.iterdir()) == []


def test_full_replace_select():
    full = MaskSet.full({"a": torch.zeros(3, 2)}, ["en", "fr"])
    assert full.sparsity("en") == 0.0
    new = full.replace("it", {"a": torch.zeros(3, 2, dtype=torch.bool)})
    assert new.languages == ("en", "fr", "it") and new.sparsity("it") == 1.0
    assert new.select(["it"]).languages == ("it",)
