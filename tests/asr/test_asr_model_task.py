"""PathwaysTransducerModel and PathwaysASRTask: loss, stats, language kwargs, configs, registration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from espnet_pathways.asr.encoder.emformer import EmformerEncoder
from espnet_pathways.asr.transducer.model import PathwaysTransducerModel
from espnet_pathways.tasks.asr import PathwaysASRTask

CONF = Path(__file__).resolve().parents[2] / "egs2_mls_pathways" / "asr1" / "conf"
REPO = Path(__file__).resolve().parents[2]


def write_tokens(path: Path, n_pieces: int) -> Path:
    path.write_text("\n".join(["<blank>", "<unk>", *[f"p{i}" for i in range(n_pieces)], "<sos/eos>"]) + "\n")
    return path


def write_stats(path: Path, dim: int = 80) -> Path:
    np.savez(path, count=np.array(100.0), sum=np.zeros(dim), sum_square=np.full(dim, 100.0))
    return path


def build(tmp_path: Path, *argv: str, n_pieces: int = 10):
    tokens = write_tokens(tmp_path / "tokens.txt", n_pieces)
    args = PathwaysASRTask.get_parser().parse_args(["--token_list", str(tokens), *argv])
    return PathwaysASRTask.build_model(args), args


def small_args(**overrides):
    conf = {
        "--model": "pathways_transducer",
        "--encoder": "emformer",
        "--encoder_conf": "{output_size: 32, num_layers: 1, num_heads: 2, ffn_dim: 64, time_reduction_stride: 4, "
        "segment_length: 2, right_context_length: 1, dropout: 0.0}",
        "--predictor_conf": "{embed_dim: 16, hidden_size: 24, dropout: 0.0}",
        "--joiner_conf": "{joint_size: 24}",
        "--frontend_conf": "{n_fft: 256, hop_length: 80, n_mels: 20}",
        "--model_conf": "{ctc_weight: 0.5}",
    }
    conf.update(overrides)
    return [item for pair in conf.items() for item in pair]


def batch(n_utt=3, vocab=13, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([4000, 3200, 2400][:n_utt])
    speech = torch.randn(n_utt, int(lengths.max()), generator=gen)
    text_lengths = torch.tensor([5, 3, 4][:n_utt])
    text = torch.full((n_utt, int(text_lengths.max())), -1, dtype=torch.long)
    for b, n in enumerate(text_lengths.tolist()):
        text[b, :n] = torch.randint(2, vocab - 1, (n,), generator=gen)
    return dict(speech=speech, speech_lengths=lengths, text=text, text_lengths=text_lengths)


def test_paper_config_has_about_100m_parameters(tmp_path):
    stats = write_stats(tmp_path / "stats.npz")
    model, args = build(
        tmp_path, "--config", str(CONF / "train_asr_emformer_paper.yaml"), "--normalize_conf", f"stats_file={stats}",
        n_pieces=1545,
    )  # fmt: skip
    assert len(args.token_list) == 1548
    n_params = sum(p.numel() for p in model.parameters())
    assert 95e6 <= n_params <= 105e6, n_params
    enc = model.encoder
    assert isinstance(enc, EmformerEncoder)
    assert (enc.stride, enc.segment_length, enc.right_context_length) == (6, 4, 1)
    assert len(enc.emformer.emformer_layers) == 30 and enc.output_size() == 512
    (optimizer,) = PathwaysASRTask.build_optimizers(args, model)
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["fused"]


def test_demo_config_builds_and_trains_a_step(tmp_path):
    stats = write_stats(tmp_path / "stats.npz")
    model, _ = build(
        tmp_path, "--config", str(CONF / "train_asr_emformer_demo.yaml"), "--normalize_conf", f"stats_file={stats}",
        n_pieces=60,
    )  # fmt: skip
    assert isinstance(model, PathwaysTransducerModel)
    assert sum(p.numel() for p in model.parameters()) < 5e6
    model.train()
    loss, stats_out, weight = model(**batch(vocab=63))
    loss.backward()
    assert torch.isfinite(loss) and int(weight) == 3
    assert {"loss", "loss_transducer", "loss_ctc"} <= set(stats_out)


def test_forward_accepts_language_ids_and_reports_validation_scores(tmp_path):
    model, _ = build(tmp_path, *small_args())
    data = batch()
    model.eval()
    with torch.no_grad():
        loss, stats, _ = model(**data, lang=torch.tensor([[0], [1], [0]]), lang_lengths=torch.ones(3, dtype=torch.long))
        loss_no_lang, _, _ = model(**data, utt_id=["a", "b", "c"])
    assert torch.isfinite(loss)
    assert loss == loss_no_lang  # the dense model ignores the language
    assert 0.0 <= float(stats["cer"]) and 0.0 <= float(stats["wer"])
    expected = float(stats["loss_transducer"]) + 0.5 * float(stats["loss_ctc"])
    assert float(stats["loss"]) == pytest.approx(expected, rel=1e-5)
    model.train()
    _, train_stats, _ = model(**data)
    assert "cer" not in train_stats  # greedy scoring only on validation


def test_transducer_loss_matches_manual_rnnt_loss(tmp_path):
    import torchaudio

    model, _ = build(tmp_path, *small_args(**{"--model_conf": "{ctc_weight: 0.0}"}))
    model.eval()
    data = batch()
    with torch.no_grad():
        loss, stats, _ = model(**data)
        enc, enc_lens = model.encode(data["speech"], data["speech_lengths"])
        per_utt = []
        for b in range(3):
            n, u = int(enc_lens[b]), int(data["text_lengths"][b])
            target = data["text"][b : b + 1, :u]
            logits = model.joiner(enc[b : b + 1, :n], model.predictor(target))
            per_utt.append(
                torchaudio.functional.rnnt_loss(
                    logits, target.int(), torch.tensor([n]).int(), torch.tensor([u]).int(), blank=0
                )
            )
    assert float(loss) == pytest.approx(float(torch.stack(per_utt).mean()), rel=1e-4)
    assert "loss_ctc" not in stats


def test_collect_feats_returns_frontend_features(tmp_path):
    model, _ = build(tmp_path, *small_args())
    out = model.collect_feats(**batch(), lang=torch.zeros(3, 1, dtype=torch.long))
    assert out["feats"].shape[0] == 3 and out["feats"].shape[2] == 20
    assert out["feats_lengths"].tolist() == [4000 // 80 + 1, 3200 // 80 + 1, 2400 // 80 + 1]


def test_bad_configurations_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="decoder"):
        build(tmp_path, *small_args(), "--decoder", "rnn")
    with pytest.raises(ValueError, match="both be 0"):
        build(tmp_path, *small_args(**{"--model_conf": "{transducer_weight: 0.0}"}))
    bad_tokens = tmp_path / "bad.txt"
    bad_tokens.write_text("<unk>\n<blank>\na\n")
    args = PathwaysASRTask.get_parser().parse_args(["--token_list", str(bad_tokens), *small_args()])
    with pytest.raises(ValueError, match="blank"):
        PathwaysASRTask.build_model(args)
    with pytest.raises(FileNotFoundError, match="lang_list"):
        build(tmp_path, *small_args(), "--lang_list", str(tmp_path / "missing.txt"))


def test_lang_list_is_stored_as_a_list(tmp_path):
    langs = tmp_path / "langs.txt"
    langs.write_text("en\nfr\nit\nnl\n")
    _, args = build(tmp_path, *small_args(), "--lang_list", str(langs))
    assert args.lang_list == ["en", "fr", "it", "nl"]
    assert "lang" in PathwaysASRTask.optional_data_names(train=True)
    dup = tmp_path / "dup.txt"
    dup.write_text("en\nen\n")
    with pytest.raises(ValueError, match="duplicated"):
        build(tmp_path, *small_args(), "--lang_list", str(dup))


def test_stock_espnet_models_build_through_the_plugin_task(tmp_path):
    from espnet2.asr.espnet_model import ESPnetASRModel

    model, _ = build(
        tmp_path,
        "--encoder", "conformer",
        "--encoder_conf", "{output_size: 32, attention_heads: 2, linear_units: 32, num_blocks: 1}",
        "--decoder", "transformer", "--decoder_conf", "{attention_heads: 2, linear_units: 32, num_blocks: 1}",
        "--frontend_conf", "{n_fft: 256, hop_length: 80, n_mels: 20}",
    )  # fmt: skip
    assert isinstance(model, ESPnetASRModel)
    loss, _, _ = model(**batch())
    assert torch.isfinite(loss)


def test_import_registers_plugin_classes_in_a_fresh_interpreter():
    code = (
        "import sys, espnet_pathways\n"
        "assert 'espnet2.tasks.asr' not in sys.modules\n"
        "from espnet2.tasks.asr import encoder_choices, model_choices, preprocessor_choices\n"
        "print('REGISTERED', encoder_choices.get_class('emformer').__name__, model_choices.get_class('pathways_transducer').__name__,"
        " preprocessor_choices.get_class('pathways').__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("REGISTERED"))
    assert line.split()[1:] == ["EmformerEncoder", "PathwaysTransducerModel", "LanguageAwarePreprocessor"]
