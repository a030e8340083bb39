"""What a pruning run writes: masks, reports, plots, re-masked averaged checkpoints; masks.pwm last."""

import json

import pytest
import torch

from espnet_pathways.masks import MaskSet, magnitude_masks, prunable_parameters
from espnet_pathways.pruning import outputs
from espnet_pathways.pruning.outputs import schedule_trace, write_pruning_outputs
from toy import Toy, build, train

CONF = dict(method="adaptive_imp", schedule="cubic", target_sparsity=0.6, initial_sparsity=0.2, num_events=2,
            prune_interval=4, adapt_interval=2)


def _finished_run(exp_dir):
    """A trained, frozen run whose exp dir holds an averaged checkpoint (and its symlink), like ESPnet's."""
    model, engine, opt = build(CONF, lr=0.2, optimizer="sgd")
    train(model, opt, range(4))
    # an "averaged" checkpoint mixing earlier (denser) weights, as ESPnet's n-best averaging does
    early = model.state_dict()
    train(model, opt, range(4, 16))
    late = model.state_dict()
    averaged = {k: (early[k] + late[k]) / 2 if early[k].is_floating_point() else early[k] for k in late}
    torch.save(averaged, exp_dir / "valid.loss.ave_2best.pth")
    (exp_dir / "valid.loss.ave.pth").symlink_to("valid.loss.ave_2best.pth")
    engine.freeze()
    return model, engine


def test_outputs_of_a_run(tmp_path):
    model, engine = _finished_run(tmp_path)
    written = write_pruning_outputs(model, engine, tmp_path)

    final = MaskSet.load(tmp_path / "masks.pwm")
    assert final == model.pathway_masks.maskset()
    stats = json.loads((tmp_path / "pruning" / "stats.json").read_text())
    assert stats["sparsity"]["*"] == final.sparsity("*")
    kinds = [e["kind"] for e in stats["schedule"]]
    assert kinds.count("prune") == 3 and "adapt" in kinds and "freeze" in kinds
    assert "| **prunable" in (tmp_path / "pruning" / "sparsity.md").read_text()
    for name in ("layer_sparsity", "schedule"):
        assert written[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state = torch.load(tmp_path / "valid.loss.ave.pth", weights_only=False)
    for name in final.names:
        assert bool((state[name][~final["*"][name]] == 0).all()), f"{name} violates the final mask"
        assert torch.equal(state[f"pathway_masks.masks.*.{name.replace('.', '__')}"], final["*"][name])
    assert (tmp_path / "valid.loss.ave.pth").is_symlink()


def test_masks_file_is_written_last(tmp_path, monkeypatch):
    model, engine = _finished_run(tmp_path)
    (tmp_path / "masks.pwm").write_bytes(b"masks of an earlier run")

    def killed(path, maskset):
        raise RuntimeError("killed while re-masking")

    monkeypatch.setattr(outputs, "remask_checkpoint", killed)
    with pytest.raises(RuntimeError, match="killed"):
        write_pruning_outputs(model, engine, tmp_path)
    assert (tmp_path / "pruning" / "stats.json").is_file()
    assert not (tmp_path / "masks.pwm").exists(), "an un-masked averaged model must not look finished"
    monkeypatch.undo()
    assert write_pruning_outputs(model, engine, tmp_path)["masks"] == tmp_path / "masks.pwm"
    assert MaskSet.load(tmp_path / "masks.pwm") == model.pathway_masks.maskset()


def test_leftovers_of_a_killed_run_are_removed(tmp_path):
    model, engine = _finished_run(tmp_path)
    stale = [".masks.pwm.abcd1234.tmp", ".valid.loss.ave_2best.pth.abcd1234.tmp", "pruning/.stats.json.abcd1234.tmp"]
    kept = [".train.log.abcd1234.tmp", "pruning/.notes.md.abcd1234.tmp"]  # not written by the pruning outputs
    (tmp_path / "pruning").mkdir()
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"half")
    write_pruning_outputs(model, engine, tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.tmp")) == sorted(kept)


def test_schedule_trace_of_a_hard_method():
    model, engine, opt = build(dict(method="imp", schedule="geometric", rate=0.5, target_sparsity=0.7, prune_interval=3))
    train(model, opt, range(7))
    trace = schedule_trace(engine)
    assert [s for s, _, _ in trace] == [0, 3, 6]
    assert all(k == "prune" for _, _, k in trace)


def test_schedule_trace_of_dynamic_pathways_marks_no_global_adaptation_steps(tmp_path):
    scores = {n: torch.rand(p.shape) for n, p in prunable_parameters(Toy()).items()}
    lap = MaskSet({"*": magnitude_masks(scores, 0.5)}).save(tmp_path / "lap.pwm")
    conf = dict(method="dynamic_pathways", init_masks=[str(lap)], schedule="cubic", initial_sparsity=0.5,
                target_sparsity=0.7, num_events=2, prune_interval=4, adapt_interval=2)
    model, engine, opt = build(conf, lr=0.2, optimizer="sgd")
    train(model, opt, range(14), lang_of=lambda s: s % 2)
    assert [(s, k) for s, _, k in schedule_trace(engine)] == [(0, "prune"), (4, "prune"), (8, "prune"), (12, "freeze")]
