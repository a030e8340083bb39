"""Language lists: the codes indexed by the integer ids of ``utt2lang_id``.

A data dir holds one as :data:`LANG_LIST` (one code a line; the line order gives the ids 0, 1, ...).
Like ESPnet's ``--token_list``, ``--lang_list`` is given as such a file or a list, and stored in
``config.yaml`` as a list so that a trained model is portable.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Union

__all__ = ["LANG_LIST", "read_lang_list", "lang_id_to_code", "lang_code_to_id"]

LANG_LIST = "lang_list.txt"


def read_lang_list(spec: Union[str, Path, Sequence[str]]) -> List[str]:
    """Language codes from a file (one code a line) or a sequence: one code each, no repeats, not empty.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: naming the file and line (``--lang_list`` and the position for a sequence).
    """
    if isinstance(spec, (str, Path)):
        if not Path(spec).is_file():
            raise FileNotFoundError(f"--lang_list: no such file: {spec}")
        where, lines = str(spec), Path(spec).read_text(encoding="utf-8").splitlines()
    else:
        where, lines = "--lang_list", [str(code) for code in spec]
    langs: List[str] = []
    for lineno, line in enumerate(lines, 1):
        lang = line.strip()
        if not lang or len(lang.split()) != 1:
            raise ValueError(f"{where}:{lineno}: expected one language code, got {line!r}")
        if lang in langs:
            raise ValueError(f"{where}:{lineno}: duplicated language {lang!r}")
        langs.append(lang)
    if not langs:
        raise ValueError(f"{where}: empty language list")
    return langs


def lang_id_to_code(lang_id: int, lang_list: Sequence[str], where: str = "lang") -> str:
    """Code of ``lang_id``; a clear error when it is out of range."""
    if not 0 <= lang_id < len(lang_list):
        raise ValueError(f"{where}: language id {lang_id} is not in lang_list {list(lang_list)}")
    return lang_list[lang_id]


def lang_code_to_id(code: str, lang_list: Optional[Sequence[str]], where: str = "--lang") -> int:
    """Id of ``code``; a clear error when the model has no lang_list or does not know the code."""
    if not lang_list:
        raise ValueError(f"{where} {code!r} given, but the model's config has no lang_list")
    if code not in lang_list:
        raise ValueError(f"{where}: unknown language {code!r}; the model knows {list(lang_list)}")
    return list(lang_list).index(code)
