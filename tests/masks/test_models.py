"""Masks plug into real models: ESPnet's Conformer CTC/attention model and RNN decoder, torchaudio's
Emformer and RNN-T; ESPnet's n-best checkpoint averaging keeps the masks."""

import pytest
import torch

from espnet_pathways.masks import MaskSet, attach, magnitude_masks, prunable_parameters


def _espnet_conformer(vocab=12):
    from espnet2.asr.ctc import CTC
    from espnet2.asr.decoder.transformer_decoder import TransformerDecoder
    from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
    from espnet2.asr.espnet_model import ESPnetASRModel

    encoder = ConformerEncoder(input_size=10, output_size=16, attention_heads=2, linear_units=32, num_blocks=2,
                               input_layer="conv2d", cnn_module_kernel=3)
    decoder = TransformerDecoder(vocab, 16, attention_heads=2, linear_units=32, num_blocks=1)
    tokens = ["<blank>", "<unk>"] + [chr(97 + i) for i in range(vocab - 3)] + ["<sos/eos>"]
    return ESPnetASRModel(vocab_size=vocab, token_list=tokens, frontend=None, specaug=None, normalize=None,
                          preencoder=None, encoder=encoder, postencoder=None, decoder=decoder,
                          ctc=CTC(vocab, 16), joint_network=None, ctc_weight=0.3)


def _batch(vocab=12):
    speech = torch.randn(2, 40, 10)
    text = torch.randint(1, vocab - 1, (2, 4))
    return dict(speech=speech, speech_lengths=torch.tensor([40, 33]), text=text, text_lengths=torch.tensor([4, 3]))


def test_espnet_conformer_ctc_attention_model():
    model = _espnet_conformer()
    params = prunable_parameters(model)
    assert "encoder.encoders.0.feed_forward.w_1.weight" in params
    assert "encoder.encoders.0.conv_module.pointwise_conv1.weight" in params
    assert "decoder.decoders.0.self_attn.linear_q.weight" in params
    assert not any("embed.0" in n and n.startswith("decoder") for n in params), "embeddings stay dense"
    assert not any(n.endswith(".bias") or "norm" in n for n in params)
    masks = MaskSet({"*": magnitude_masks(params, 0.7)})
    attach(model, masks)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(2):
        loss, stats, _ = model(**_batch())
        loss.backward()
        opt.step()
        opt.zero_grad()
    for n, p in params.items():
        assert bool((p[~masks["*"][n]] == 0).all()), n
    assert masks.sparsity("*") == pytest.approx(0.7, abs=1e-3)


def test_espnet_rnn_decoder_lstm_cells():
    from espnet2.asr.decoder.rnn_decoder import RNNDecoder

    decoder = RNNDecoder(vocab_size=10, encoder_output_size=8, rnn_type="lstm", num_layers=1, hidden_size=8)
    names = list(prunable_parameters(decoder))
    assert "decoder.0.weight_ih" in names and "decoder.0.weight_hh" in names
    assert "embed.weight" not in names
    attach(decoder, MaskSet({"en": magnitude_masks(prunable_parameters(decoder), 0.5)}))


def test_torchaudio_emformer_and_rnnt():
    import torchaudio

    emformer = torchaudio.models.Emformer(input_dim=16, num_heads=2, ffn_dim=32, num_layers=2,
                                          segment_length=4, right_context_length=1)
    params = prunable_parameters(emformer)
    assert any("pos_ff" in n for n in params) and any("attention" in n for n in params)
    attach(emformer, MaskSet({"en": magnitude_masks(params, 0.5)}))
    out, lengths = emformer(torch.randn(2, 13, 16), torch.tensor([12, 8]))
    assert out.shape == (2, 12, 16)

    rnnt = torchaudio.models.emformer_rnnt_model(
        input_dim=16, encoding_dim=16, num_symbols=9, segment_length=4, right_context_length=1,
        time_reduction_input_dim=16, time_reduction_stride=2, transformer_num_heads=2, transformer_ffn_dim=32,
        transformer_num_layers=1, transformer_dropout=0.0, transformer_activation="relu",
        transformer_left_context_length=0, transformer_max_memory_size=0, transformer_weight_init_scale_strategy=None,
        transformer_tanh_on_mem=False, symbol_embedding_dim=8, num_lstm_layers=1, lstm_layer_norm=True,
        lstm_layer_norm_epsilon=1e-5, lstm_dropout=0.0,
    )
    names = list(prunable_parameters(rnnt))
    assert any("predictor" in n and "lstm" in n for n in names)
    assert not any("embedding" in n for n in names)
    attach(rnnt, MaskSet({"en": magnitude_masks(prunable_parameters(rnnt), 0.6)}))


def test_espnet_nbest_averaging_keeps_masks(tmp_path):
    from espnet2.main_funcs.average_nbest_models import average_nbest_models
    from espnet2.train.reporter import Reporter

    model = _espnet_conformer()
    params = prunable_parameters(model)
    masks = MaskSet({"en": magnitude_masks(params, 0.6), "fr": magnitude_masks(params, 0.4, scope="layerwise")})
    attach(model, masks, lang_list=["en", "fr"])
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    reporter = Reporter()
    for epoch in (1, 2, 3):
        reporter.set_epoch(epoch)
        loss, _, _ = model(**_batch(), lang=torch.tensor([epoch % 2, epoch % 2]))
        loss.backward()
        opt.step()
        opt.zero_grad()
        with reporter.observe("valid") as sub:
            sub.register({"loss": float(3 - epoch)})
            sub.next()
        torch.save(model.state_dict(), tmp_path / f"{epoch}epoch.pth")
    average_nbest_models(tmp_path, reporter, [("valid", "loss", "min")], nbest=3)
    averaged = torch.load(tmp_path / "valid.loss.ave_3best.pth", weights_only=False)
    fresh = _espnet_conformer()
    attach(fresh, MaskSet.full(prunable_parameters(fresh), ["en", "fr"]), lang_list=["en", "fr"])
    fresh.load_state_dict(averaged)
    assert fresh.pathway_masks.maskset() == masks
    union = masks.union()
    for n, p in prunable_parameters(fresh).items():
        full = fresh.pathway_masks.full_weights()[n]
        assert bool((full[~union[n]] == 0).all())
    fresh.pathway_masks.activate("fr")
    for n, p in prunable_parameters(fresh).items():
        assert bool((p[~masks["fr"][n]] == 0).all())


class _Stack(torch.nn.Module):
    """Layers in an ``nn.ModuleList``, applied in a loop (B: batch, D: 6)."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(6, 6) for _ in range(3)])

    def forward(self, x, lang=None):
        for layer in self.layers:
            x = torch.tanh(layer(x))
        return x


def _plain_copy_output(model, factory, lang, *args, **kwargs):
    """Output of a fresh ``factory()`` model holding ``model``'s weights with ``lang``'s pathway applied by hand."""
    masks = model.pathway_masks.maskset()[lang]
    weights = model.pathway_masks.full_weights()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("pathway_")}
    state.update({n: weights[n] * masks[n] for n in masks})
    plain = factory()
    plain.load_state_dict(state)
    plain.train(model.training)
    return plain(*args, **kwargs)


@pytest.mark.parametrize("engine", [False, True])
@pytest.mark.parametrize("kind", ["sequential", "modulelist"])
def test_containers_keep_their_forward_with_masks_and_engine(kind, engine):
    """nn.Sequential calls every child: the handle (and the engine) must pass its input through."""
    from espnet_pathways.pruning import PruningConfig, attach_pruning

    def factory():
        torch.manual_seed(0)
        if kind == "sequential":
            return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 6))
        return _Stack()

    model, x = factory(), torch.randn(3, 6)
    if engine:
        attach_pruning(model, PruningConfig.from_dict(dict(method="lap", target_sparsity=0.5, schedule="constant")))
        model.train()
        model(x)  # the step-0 event prunes to 50%
        assert model.pathway_masks.maskset().sparsity("*") == pytest.approx(0.5, abs=0.02)
    else:
        params = prunable_parameters(model)
        attach(model, MaskSet({"en": magnitude_masks(params, 0.5), "fr": magnitude_masks(params, 0.3)}))
        model.pathway_masks.activate("fr")
    lang = model.pathway_masks.active
    assert torch.allclose(model(x), _plain_copy_output(model, factory, lang, x), atol=1e-6)


def test_espnet_conformer_with_language_pathways_and_engine(tmp_path):
    """ESPnet's stock Conformer CTC/attention model trained through the pruning engine with two pathways."""
    from espnet_pathways.pruning import PruningConfig, attach_pruning

    model = _espnet_conformer()
    params = prunable_parameters(model)
    paths = [str(MaskSet({lang: magnitude_masks(params, 0.6, scope=scope)}).save(tmp_path / f"{lang}.pwm"))
             for lang, scope in (("en", "global"), ("fr", "layerwise"))]
    engine = attach_pruning(model, PruningConfig.from_dict(dict(method="pathways", init_masks=paths)), ["en", "fr"])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    engine.bind(opt)
    model.train()
    model(**_batch(), lang=torch.tensor([0, 0]))  # the first training forward loads the masks
    for step in range(4):
        handle = model.pathway_masks
        before = handle.full_weights()
        lang = step % 2
        loss, _, _ = model(**_batch(), lang=torch.tensor([lang, lang]))
        loss.backward()
        opt.step()
        opt.zero_grad()
        region = handle.region(["en", "fr"][lang])
        after = handle.full_weights()
        for n in region:
            assert torch.equal(after[n][~region[n]], before[n][~region[n]]), (step, n)
    model.eval()
    batch = _batch()
    with torch.no_grad():
        out, _, _ = model(**batch, lang=torch.tensor([1, 1]))
        expected, _, _ = _plain_copy_output(model, _espnet_conformer, "fr", **batch)
    assert torch.allclose(out, expected, atol=1e-5)
