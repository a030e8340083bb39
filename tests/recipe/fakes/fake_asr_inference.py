"""Stand-in for ``espnet_pathways.bin.asr_inference`` in the recipe tests (same arguments).

Decodes every key of ``--key_file`` as its reference text (read next to the ``wav.scp`` of
``--data_path_and_name_and_type``) and writes ``<output_dir>/1best_recog/{text,token,token_int,score}``.
Fails when ``--lang`` is not the keys' language, or on the key named by ``$FAKE_FAIL_KEY``.
"""

import argparse
import json
import os
import sys
from pathlib import Path


def table(path):
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(" ")
        out[key] = value.strip()
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data_path_and_name_and_type", required=True)
    p.add_argument("--key_file", required=True)
    p.add_argument("--asr_train_config", required=True)
    p.add_argument("--asr_model_file", required=True)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--lang", required=True)
    p.add_argument("--config", default=None)
    p.add_argument("--ngpu", type=int, default=0)
    args, extra = p.parse_known_args()
    scp = Path(args.data_path_and_name_and_type.split(",")[0])
    ref, langs = table(scp.parent / "text"), table(scp.parent / "utt2lang")
    keys = list(table(args.key_file))
    out = Path(args.output_dir) / "1best_recog"
    out.mkdir(parents=True, exist_ok=True)
    files = {name: [] for name in ("text", "token", "token_int", "score")}
    for key in keys:
        if langs[key] != args.lang or key == os.environ.get("FAKE_FAIL_KEY"):
            print(f"cannot decode {key} (lang {langs[key]}, --lang {args.lang})", file=sys.stderr)
            return 1
        words = ref[key].split()
        files["text"].append(f"{key} {' '.join(words)}")
        files["token"].append(f"{key} {' '.join(chr(0x2581) + w for w in words)}")
        files["token_int"].append(f"{key} {' '.join(str(3 + i) for i in range(len(words)))}")
        files["score"].append(f"{key} tensor(-1.0)")
    for name, lines in files.items():
        (out / name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    (Path(args.output_dir) / "argv.json").write_text(json.dumps({"argv": sys.argv[1:], "extra": extra}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
