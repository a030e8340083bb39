"""The ``--lang_list`` option: language codes indexed by the integer ids of ``utt2lang_id``.

Like ESPnet's ``--token_list`` it is given as a file (one code per line) or a list, and stored in
``config.yaml`` as a list so that a trained model is portable.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import List, Optional, Sequence, Union

__all__ = ["read_lang_list", "resolve_lang_list", "lang_id_to_code", "lang_code_to_id"]


def read_lang_list(spec: Union[str, Path, Sequence[str]]) -> List[str]:
    """Language codes from a file path (one per line) or a sequence; validated (non-empty, unique).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: empty, blank or duplicated codes.
    """
    if isinstance(spec, (str, Path)):
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"--lang_list: no such file: {path}")
        codes = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        where = str(path)
    else:
        codes = [str(c).strip() for c in spec]
        where = "--lang_list"
    if not codes or any(not c for c in codes):
        raise ValueError(f"{where}: language list is empty or has blank entries")
    if len(set(codes)) != len(codes):
        raise ValueError(f"{where}: duplicated language codes in {codes}")
    return codes


def resolve_lang_list(args: argparse.Namespace) -> Optional[List[str]]:
    """Turn ``args.lang_list`` (path or list) into a list in place, so that config.yaml stores the list."""
    spec = getattr(args, "lang_list", None)
    if spec is None:
        return None
    codes = read_lang_list(spec)
    args.lang_list = codes
    return codes


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
