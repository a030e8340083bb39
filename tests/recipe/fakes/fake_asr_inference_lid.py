"""Stand-in for ``espnet_pathways.bin.asr_inference`` that also knows ``--lang auto`` (recipe tests).

With ``--lang CODE`` it is :mod:`fake_asr_inference`. With ``--lang auto`` it "identifies" every
key's language as its true one (``utt2lang`` next to the ``wav.scp``) and decodes its reference,
except the keys listed in ``$FAKE_WRONG_LANG`` (comma-separated): those get language ``it`` and an
empty hypothesis. Writes ``<output_dir>/1best_recog/{text,score,lang}`` (no ``lang`` when
``$FAKE_NO_LANG`` is set).
"""

import json
import os
import sys
from pathlib import Path

import fake_asr_inference


def main():
    argv = sys.argv[1:]
    if argv[argv.index("--lang") + 1] != "auto":
        return fake_asr_inference.main()
    opt = lambda name: argv[argv.index(name) + 1]  # noqa: E731
    scp = Path(opt("--data_path_and_name_and_type").split(",")[0])
    ref, langs = fake_asr_inference.table(scp.parent / "text"), fake_asr_inference.table(scp.parent / "utt2lang")
    wrong = set(filter(None, os.environ.get("FAKE_WRONG_LANG", "").split(",")))
    out = Path(opt("--output_dir")) / "1best_recog"
    out.mkdir(parents=True, exist_ok=True)
    rows = {"text": [], "lang": [], "score": []}
    for key in fake_asr_inference.table(opt("--key_file")):
        rows["text"].append(f"{key} {'' if key in wrong else ref[key]}")
        rows["lang"].append(f"{key} {'it' if key in wrong else langs[key]}")
        rows["score"].append(f"{key} -1.0")
    if os.environ.get("FAKE_NO_LANG"):
        del rows["lang"]
    for name, lines in rows.items():
        (out / name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    (Path(opt("--output_dir")) / "argv.json").write_text(json.dumps({"argv": argv}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
