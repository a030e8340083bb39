"""Language-aware text preprocessing: one SentencePiece model per language, one merged token list.

Contract with the recipe's token-list stage: ``--bpemodel DIR`` holds ``DIR/<lang>.model`` for
every code of ``--lang_list``, and ``--token_list`` is the merged list (``<blank>`` first,
``<unk>``, ..., ``<sos/eos>`` last). Each utterance's text is cut into pieces by the model of its
language (read from the ``lang`` data entry, an integer id into ``lang_list``) and the pieces are
mapped through the merged list. With ``--bpemodel FILE`` (or another token type) the class behaves
exactly like ESPnet's ``CommonPreprocessor``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Collection, Dict, Iterable, Optional, Sequence, Union

import numpy as np
from espnet2.text.cleaner import TextCleaner
from espnet2.text.sentencepiece_tokenizer import SentencepiecesTokenizer
from espnet2.text.token_id_converter import TokenIDConverter
from espnet2.train.preprocessor import CommonPreprocessor

from espnet_pathways.utils.lang_list import lang_id_to_code

__all__ = ["LanguageAwarePreprocessor", "is_per_language_bpe"]


def is_per_language_bpe(token_type: Optional[str], bpemodel: Optional[Union[str, Path]]) -> bool:
    """True when ``bpemodel`` is a directory of per-language SentencePiece models."""
    return token_type == "bpe" and bpemodel is not None and Path(bpemodel).is_dir()


class LanguageAwarePreprocessor(CommonPreprocessor):
    """``CommonPreprocessor`` whose BPE tokenizer is chosen by the utterance's language.

    Args:
        train: training mode (enables data augmentation options of the base class).
        lang_list: language codes indexed by the ids of the ``lang`` entry.
        lang_name: name of the data entry holding the language id.
        token_type: ESPnet token type.
        token_list: merged token list (path or list).
        bpemodel: directory with ``<lang>.model`` files, or a single model file.
        text_cleaner: ESPnet text cleaners.
        unk_symbol: symbol for pieces missing from the token list.
        text_name: name of the text data entry.
        kwargs: every other ``CommonPreprocessor`` option.
    """

    def __init__(
        self,
        train: bool,
        lang_list: Optional[Sequence[str]] = None,
        lang_name: str = "lang",
        token_type: Optional[str] = None,
        token_list: Union[Path, str, Iterable[str], None] = None,
        bpemodel: Union[Path, str, None] = None,
        text_cleaner: Optional[Collection[str]] = None,
        unk_symbol: str = "<unk>",
        text_name: str = "text",
        **kwargs,
    ) -> None:
        self.per_language = is_per_language_bpe(token_type, bpemodel)
        self.lang_name = lang_name
        self.lang_list = list(lang_list) if lang_list is not None else None
        if not self.per_language:
            super().__init__(
                train,
                token_type=token_type,
                token_list=token_list,
                bpemodel=bpemodel,
                text_cleaner=text_cleaner,
                unk_symbol=unk_symbol,
                text_name=text_name,
                **kwargs,
            )
            self.lang_tokenizers: Dict[str, SentencepiecesTokenizer] = {}
            return
        super().__init__(train, token_type=None, text_name=text_name, **kwargs)
        if not self.lang_list:
            raise ValueError(f"--bpemodel {bpemodel} is a directory of per-language models: --lang_list is required")
        if token_list is None:
            raise ValueError("--token_list is required with --token_type bpe")
        self.lang_tokenizers = {}
        for code in self.lang_list:
            model = Path(bpemodel) / f"{code}.model"
            if not model.is_file():
                raise FileNotFoundError(f"--bpemodel {bpemodel}: no SentencePiece model for language {code!r} ({model})")
            self.lang_tokenizers[code] = SentencepiecesTokenizer(model)
        self.text_cleaner = TextCleaner(text_cleaner)
        self.token_id_converter = TokenIDConverter(token_list=token_list, unk_symbol=unk_symbol)

    def _text_process(self, data: Dict[str, Union[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        if not self.per_language:
            return super()._text_process(data)
        text = data.get(self.text_name)
        if text is None or isinstance(text, np.ndarray):
            return data
        if self.lang_name not in data:
            raise KeyError(
                f"per-language BPE needs the {self.lang_name!r} data entry "
                f"(e.g. --train_data_path_and_name_and_type utt2lang_id,{self.lang_name},text_int)"
            )
        lang_id = int(np.asarray(data[self.lang_name]).reshape(-1)[0])
        code = lang_id_to_code(lang_id, self.lang_list, where=self.lang_name)
        tokens = self.lang_tokenizers[code].text2tokens(self.text_cleaner(text))
        data[self.text_name] = np.array(self.token_id_converter.tokens2ids(tokens), dtype=np.int64)
        return data

    def __call__(self, uid: str, data: Dict[str, Union[str, np.ndarray]]) -> Dict[str, np.ndarray]:
        try:
            return super().__call__(uid, data)
        except (KeyError, ValueError) as err:
            raise ValueError(f"utterance {uid}: {err}") from err
