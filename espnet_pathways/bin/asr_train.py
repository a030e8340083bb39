"""ESPnet's ASR training CLI with the plugin registered.

Every ``espnet2.bin.asr_train`` option works (``--config``, ``--ngpu``, ``--init_param``, ``--resume``,
distributed options, ...), plus ``--lang_list``, ``--predictor``/``--predictor_conf``,
``--joiner_conf`` and ``model: pathways_transducer`` / ``encoder: emformer`` in the YAML::

    python -m espnet_pathways.bin.asr_train --config conf/train_asr_emformer_demo.yaml \\
        --token_list data/token_list/tokens.txt --output_dir exp/asr_demo ...
"""

from __future__ import annotations

import argparse
from typing import List, Optional

from espnet_pathways.tasks.asr import PathwaysASRTask
from espnet_pathways.utils.distributed import exit_now, leave_process_group


def get_parser() -> argparse.ArgumentParser:
    """The task's full argument parser."""
    return PathwaysASRTask.get_parser()


def main(cmd: Optional[List[str]] = None) -> None:
    """Run ESPnet's training main with the plugin task (``cmd`` = argv without the program name)."""
    PathwaysASRTask.main(cmd=cmd)
    if leave_process_group():
        exit_now(0)


if __name__ == "__main__":
    main()
