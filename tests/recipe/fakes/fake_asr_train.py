"""Stand-in for ``espnet_pathways.bin.asr_train`` in the recipe tests.

``--collect_stats true``: writes what ESPnet's collect-stats writes per job
(``<output_dir>/{train,valid}/{batch_keys,stats_keys,speech_shape,text_shape,feats_stats.npz}``).
Otherwise: writes ``config.yaml`` and the model files an ESPnet training leaves (``masks.pwm``
too when the config has ``pruning_conf``), after checking the data files exist. Every call
appends its argv to ``<output_dir>/calls.jsonl``.
``$FAKE_TRAIN_FAIL=1`` makes training fail.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np


def table(path):
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(" ")
        out[key] = value.strip()
    return out


def collect(args):
    for mode, entries, key_file in (
        ("train", args.train_data_path_and_name_and_type, args.train_shape_file[0]),
        ("valid", args.valid_data_path_and_name_and_type, args.valid_shape_file[0]),
    ):
        keys = list(table(key_file))
        data = {name: table(path) for path, name, _ in (e.split(",") for e in entries)}
        samples = table(Path(entries[0].split(",")[0]).parent / "utt2num_samples")
        d = Path(args.output_dir) / mode
        d.mkdir(parents=True, exist_ok=True)
        (d / "batch_keys").write_text("speech\ntext\nlang\n")
        (d / "stats_keys").write_text("feats\n")
        (d / "speech_shape").write_text("".join(f"{k} {samples[k]}\n" for k in keys))
        (d / "text_shape").write_text("".join(f"{k} {len(data['text'][k].split())}\n" for k in keys))
        (d / "lang_shape").write_text("".join(f"{k} 1\n" for k in keys))
        feats = np.ones((len(keys), 80))
        np.savez(d / "feats_stats.npz", count=len(keys), sum=feats.sum(0), sum_square=(feats**2).sum(0))


def train(args):
    if os.environ.get("FAKE_TRAIN_FAIL") == "1":
        print("training failed on purpose", file=sys.stderr)
        return 1
    for entry in args.train_data_path_and_name_and_type + args.valid_data_path_and_name_and_type:
        if not Path(entry.split(",")[0]).is_file():
            print(f"missing {entry}", file=sys.stderr)
            return 1
    out = Path(args.output_dir)
    (out / "config.yaml").write_text(Path(args.config).read_text())
    (out / "valid.loss.ave.pth").write_bytes(b"fake model")
    if "pruning_conf" in Path(args.config).read_text():  # a pruning run leaves its masks
        (out / "masks.pwm").write_bytes(("fake masks " + json.dumps(sys.argv[1:])).encode())
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--collect_stats", default="false")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--train_data_path_and_name_and_type", action="append", default=[])
    p.add_argument("--valid_data_path_and_name_and_type", action="append", default=[])
    p.add_argument("--train_shape_file", action="append", default=[])
    p.add_argument("--valid_shape_file", action="append", default=[])
    args, _ = p.parse_known_args()
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    with (Path(args.output_dir) / "calls.jsonl").open("a") as f:
        f.write(json.dumps(sys.argv[1:]) + "\n")
    if args.collect_stats == "true":
        collect(args)
        return 0
    return train(args)


if __name__ == "__main__":
    sys.exit(main())
