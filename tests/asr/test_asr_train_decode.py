"""End to end through ESPnet's trainer and our CLIs on a tiny tone corpus (CPU, fixed seed).

One 2-epoch training run is shared by the module: it must overfit to exact transcripts; decoding
must write ESPnet's 1best_recog files, agree between streaming and non-streaming modes and between
greedy and beam search; resuming after epoch 1 must reproduce the 2-epoch state.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from asr_tiny_corpus import FS, LANGS, TINY_CONFIG, UTTERANCES, tone_word, train_args, write_corpus
from espnet_pathways.asr.inference import Speech2Text, StreamingSpeech2Text
from espnet_pathways.bin import asr_inference, asr_train

REFERENCE = {utt: word for utt, (_, word) in UTTERANCES.items()}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny_asr")


@pytest.fixture(scope="module")
def corpus(workdir):
    files = write_corpus(workdir / "data")
    config = workdir / "train.yaml"
    config.write_text(TINY_CONFIG)
    return files, config


@pytest.fixture(scope="module")
def trained(workdir, corpus) -> Path:
    files, config = corpus
    out = workdir / "exp_2ep"
    torch.set_num_threads(1)
    asr_train.main(train_args(files, config, out, 2))
    return out


def read_kaldi(path: Path) -> dict:
    rows = [line.split(maxsplit=1) for line in path.read_text().splitlines()]
    return {r[0]: (r[1] if len(r) > 1 else "") for r in rows}


def decode(trained: Path, files, out: Path, *extra: str) -> dict:
    asr_inference.main(
        [
            "--asr_train_config", str(trained / "config.yaml"),
            "--asr_model_file", str(trained / "valid.loss.best.pth"),
            "--data_path_and_name_and_type", f"{files['wav.scp']},speech,sound",
            "--output_dir", str(out),
            *extra,
        ]
    )  # fmt: skip
    return read_kaldi(out / "1best_recog" / "text")


def test_config_is_portable(trained):
    import yaml

    config = yaml.safe_load((trained / "config.yaml").read_text())
    assert config["lang_list"] == LANGS
    assert config["token_list"][0] == "<blank>" and config["token_list"][-1] == "<sos/eos>"
    assert config["model"] == "pathways_transducer" and config["encoder"] == "emformer"


def test_overfits_to_exact_transcripts_and_writes_1best(trained, corpus, tmp_path):
    files, _ = corpus
    hyps = decode(trained, files, tmp_path / "dec", "--data_path_and_name_and_type", f"{files['utt2lang_id']},lang,text_int")
    assert hyps == REFERENCE
    best = tmp_path / "dec" / "1best_recog"
    for name in ("text", "token", "token_int", "score"):
        assert set(read_kaldi(best / name)) == set(REFERENCE)
    tokens = read_kaldi(best / "token")
    assert tokens["spk2_utt4"] == "d c e a"
    assert all(float(s) <= 0.0 for s in read_kaldi(best / "score").values())


def test_streaming_and_full_decoding_agree(trained, corpus, tmp_path):
    files, _ = corpus
    streaming = decode(trained, files, tmp_path / "s", "--streaming", "true", "--lang", "xx")
    full = decode(trained, files, tmp_path / "f", "--streaming", "false", "--lang", "xx")
    beam = decode(trained, files, tmp_path / "b", "--streaming", "true", "--beam_size", "3", "--nbest", "2")
    assert streaming == full == beam == REFERENCE
    assert set(read_kaldi(tmp_path / "b" / "2best_recog" / "text")) == set(REFERENCE)
    s_scores = read_kaldi(tmp_path / "s" / "1best_recog" / "score")
    f_scores = read_kaldi(tmp_path / "f" / "1best_recog" / "score")
    for utt in REFERENCE:
        assert float(s_scores[utt]) == pytest.approx(float(f_scores[utt]), abs=1e-4)


def test_audio_stream_api_matches_whole_utterance(trained):
    s2t = Speech2Text(trained / "config.yaml", trained / "valid.loss.best.pth", beam_size=2)
    stream = StreamingSpeech2Text(s2t)
    for seed, (utt, word) in enumerate(sorted(REFERENCE.items())):
        wav = tone_word(word, seed=seed)
        whole = s2t(wav)[0]
        partials = []
        for start in range(0, len(wav), 1111):
            partials.append(stream(wav[start : start + 1111])[0].text)
        final = stream(np.zeros(0, dtype=np.float32), is_final=True)[0]
        assert final.text == whole.text == word
        assert final.score == pytest.approx(whole.score, abs=1e-4)
        assert all(word.startswith(p) for p in partials)  # partial hypotheses only grow


@pytest.mark.parametrize("streaming", [True, False])
def test_batched_decoding_equals_one_by_one(trained, streaming):
    s2t = Speech2Text(trained / "config.yaml", trained / "valid.loss.best.pth", streaming=streaming)
    torch.manual_seed(0)
    with torch.no_grad():  # noisy weights: long, wrong hypotheses that expose any batching difference
        for param in s2t.model.parameters():
            param.add_(0.3 * param.std() * torch.randn_like(param))
    waves = [tone_word(word, seed=i) for i, word in enumerate(["abcde", "c", "dcea", "ab"])]
    waves += [np.zeros(100, dtype=np.float32), tone_word("eadbc", seed=7)[:1234]]
    lengths = torch.tensor([len(w) for w in waves])
    padded = torch.zeros(len(waves), int(lengths.max()))
    for i, wave in enumerate(waves):
        padded[i, : len(wave)] = torch.as_tensor(wave)
    batched = s2t.decode_batch(padded, lengths)
    assert len(batched) == len(waves)
    for wave, (got,) in zip(waves, batched):
        (want,) = s2t(wave)
        assert got.token_int == want.token_int
        assert got.score == pytest.approx(want.score, abs=1e-4)
    assert sum(len(r[0].token_int) for r in batched) > 10  # the search emitted real hypotheses


def test_batched_cli_decoding_splits_languages(trained, corpus, tmp_path, monkeypatch):
    files, _ = corpus
    data = tmp_path / "data"  # a recipe test set: utt2category beside wav.scp (ESPnet's loader then
    data.mkdir()              # yields one utterance at a time whatever its batch_size)
    shutil.copy(files["wav.scp"], data / "wav.scp")
    (data / "utt2category").write_text("".join(f"{utt} {lang}\n" for utt, (lang, _) in sorted(UTTERANCES.items())))
    files = {**files, "wav.scp": data / "wav.scp"}
    sizes = []
    decode_batch = Speech2Text.decode_batch
    monkeypatch.setattr(Speech2Text, "decode_batch", lambda self, speech, *a, **k: sizes.append(len(speech))
                        or decode_batch(self, speech, *a, **k))
    lang_entry = ("--data_path_and_name_and_type", f"{files['utt2lang_id']},lang,text_int")
    one = tmp_path / "one"
    batched = decode(trained, files, tmp_path / "batched", *lang_entry, "--batch_size", "3")
    langs = [lang for _, (lang, _) in sorted(UTTERANCES.items())]
    expected = [len([x for x in langs[i : i + 3] if x == lang]) for i in range(0, len(langs), 3)
                for lang in dict.fromkeys(langs[i : i + 3])]
    assert sizes == expected and max(sizes) > 1, "every 3 utterances decoded together, split by language"
    assert batched == decode(trained, files, one, *lang_entry) == REFERENCE
    for name in ("token_int", "score"):
        got = read_kaldi(tmp_path / "batched" / "1best_recog" / name)
        want = read_kaldi(one / "1best_recog" / name)
        assert got.keys() == want.keys()
        if name == "score":
            assert all(float(got[k]) == pytest.approx(float(want[k]), abs=1e-4) for k in want)
        else:
            assert got == want
    with pytest.raises(ValueError, match="--batch_size must be >= 1"):
        decode(trained, files, tmp_path / "bad", "--batch_size", "0", "--lang", "xx")


def test_short_audio_decodes_without_crash(trained, corpus, tmp_path):
    s2t = Speech2Text(trained / "config.yaml", trained / "valid.loss.best.pth", streaming=True)
    segment_s = 4 * 4 * 0.01  # segment_length * stride * 10 ms hop
    for n in (0, 100, 300, int(0.5 * segment_s * FS), int(segment_s * FS)):
        for streaming in (True, False):
            s2t.streaming = streaming
            result = s2t(np.zeros(n, dtype=np.float32))[0]
            assert isinstance(result.text, str)
    short = tmp_path / "short"
    short.mkdir()
    soundfile.write(short / "tiny.wav", np.zeros(200, dtype=np.float32), FS)
    soundfile.write(short / "seg.wav", np.zeros(int(segment_s * FS), dtype=np.float32), FS)
    (short / "wav.scp").write_text(f"tiny {short / 'tiny.wav'}\nseg {short / 'seg.wav'}\n")
    hyps = decode(trained, {"wav.scp": short / "wav.scp"}, tmp_path / "dec_short")
    assert set(hyps) == {"tiny", "seg"}


def test_unknown_lang_is_a_clear_error(trained, corpus, tmp_path):
    files, _ = corpus
    with pytest.raises(ValueError, match="unknown language 'zz'"):
        decode(trained, files, tmp_path / "dec", "--lang", "zz")
    bad_ids = tmp_path / "utt2lang_id"
    bad_ids.write_text("".join(f"{utt} 7\n" for utt in REFERENCE))
    with pytest.raises(ValueError, match="language id 7"):
        decode(trained, files, tmp_path / "dec2", "--data_path_and_name_and_type", f"{bad_ids},lang,text_int")


def test_resume_reproduces_uninterrupted_training(trained, corpus, workdir):
    files, config = corpus
    out = workdir / "exp_resume"
    asr_train.main(train_args(files, config, out, 1))
    assert not (out / "2epoch.pth").exists()
    asr_train.main(train_args(files, config, out, 2, "--resume", "true"))
    reference = torch.load(trained / "2epoch.pth", map_location="cpu")
    resumed = torch.load(out / "2epoch.pth", map_location="cpu")
    assert reference.keys() == resumed.keys()
    for name in reference:
        torch.testing.assert_close(resumed[name], reference[name], atol=1e-6, rtol=0, msg=name)


def test_masked_model_decodes_each_language_through_its_mask(trained):
    masks = pytest.importorskip("espnet_pathways.masks")
    files = (trained / "config.yaml", trained / "valid.loss.best.pth")
    dense = Speech2Text(*files, beam_size=2)
    manual = Speech2Text(*files, beam_size=2)
    masked = Speech2Text(*files, beam_size=2)

    params = masks.prunable_parameters(masked.model)
    keep_yy = masks.magnitude_masks({n: p.detach() for n, p in params.items()}, 0.7, scope="global")
    with torch.no_grad():  # reference: the weights of pathway yy applied by hand, no hooks
        manual_params = dict(manual.model.named_parameters())
        for name, keep in keep_yy.items():
            manual_params[name].mul_(keep)
    maskset = masks.MaskSet({"xx": {n: torch.ones_like(k) for n, k in keep_yy.items()}, "yy": keep_yy})
    masks.attach(masked.model, maskset, mode="hard", lang_list=LANGS)

    for seed, word in enumerate(["cad", "dcea", "ace"]):
        wav = tone_word(word, seed=seed)
        for lang, reference in (("yy", manual), ("xx", dense), ("yy", manual)):
            got = masked(wav, lang=lang)
            want = reference(wav)
            assert masked.model.pathway_masks.active == lang
            assert [r.text for r in got] == [r.text for r in want]
            assert [r.score for r in got] == pytest.approx([r.score for r in want], abs=1e-4)
        assert masked(wav, lang="yy")[0].score != pytest.approx(dense(wav)[0].score, abs=1e-4)
    with pytest.raises(ValueError, match="unknown language 'zz'"):
        masked(tone_word("ab", seed=0), lang="zz")
    with pytest.raises(ValueError, match="choose a language"):
        masked(tone_word("ab", seed=0))


STOCK_CONFIG = """\
encoder: transformer
encoder_conf: {output_size: 32, attention_heads: 2, linear_units: 32, num_blocks: 1, input_layer: conv2d}
decoder: transformer
decoder_conf: {attention_heads: 2, linear_units: 32, num_blocks: 1}
model_conf: {ctc_weight: 0.3}
frontend_conf: {n_fft: 512, win_length: 400, hop_length: 160, n_mels: 40}
optim: adam
batch_type: unsorted
batch_size: 6
num_iters_per_epoch: 3
num_workers: 0
token_type: char
use_tensorboard: false
"""


def test_stock_espnet_model_trains_and_decodes_through_our_entry_points(corpus, workdir, tmp_path):
    files, _ = corpus
    config = workdir / "stock.yaml"
    config.write_text(STOCK_CONFIG)
    out = workdir / "exp_stock"
    asr_train.main(train_args(files, config, out, 1))
    asr_inference.main(
        [
            "--asr_train_config", str(out / "config.yaml"), "--asr_model_file", str(out / "1epoch.pth"),
            "--data_path_and_name_and_type", f"{files['wav.scp']},speech,sound",
            "--output_dir", str(tmp_path / "dec"), "--beam_size", "2", "--ctc_weight", "0.3", "--lang", "yy",
        ]
    )  # fmt: skip
    assert set(read_kaldi(tmp_path / "dec" / "1best_recog" / "token")) == set(REFERENCE)
    with pytest.raises(ValueError, match="unknown language 'zz'"):
        asr_inference.main(
            [
                "--asr_train_config", str(out / "config.yaml"), "--asr_model_file", str(out / "1epoch.pth"),
                "--data_path_and_name_and_type", f"{files['wav.scp']},speech,sound",
                "--output_dir", str(tmp_path / "dec2"), "--lang", "zz",
            ]
        )  # fmt: skip
