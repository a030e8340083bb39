"""Multilingual SentencePiece: per-language models merged into one ESPnet token list."""

from espnet_pathways.text.build import build_token_list_dir, extend_token_list_dir
from espnet_pathways.text.spm_train import SpmOptions, train_sentencepiece
from espnet_pathways.text.token_list import (
    BLANK,
    SOS_EOS,
    UNK,
    extend_pieces,
    merge_pieces,
    read_token_list,
    write_token_list,
)
from espnet_pathways.text.tokenizer import LanguageTokenizer, MultilingualTokenizer, pieces_to_text

__all__ = [
    "BLANK",
    "UNK",
    "SOS_EOS",
    "SpmOptions",
    "train_sentencepiece",
    "merge_pieces",
    "extend_pieces",
    "read_token_list",
    "write_token_list",
    "build_token_list_dir",
    "extend_token_list_dir",
    "MultilingualTokenizer",
    "LanguageTokenizer",
    "pieces_to_text",
]
