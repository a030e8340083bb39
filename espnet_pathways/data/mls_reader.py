"""Read and check one MLS language release (FLAC or Opus): transcripts, handles and audio.

Every problem is reported as a :class:`Problem` naming the file and line it comes from; the
caller decides whether to raise or to drop the utterance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import soundfile as sf

from espnet_pathways.data.audio import decode_problem, error_text
from espnet_pathways.data.languages import Language
from espnet_pathways.data.mls_format import SAMPLE_RATE, UttId, audio_path, parse_utt_id
from espnet_pathways.data.parallel import parallel_map

__all__ = [
    "PROBLEM_KINDS",
    "Problem",
    "Utterance",
    "SplitScan",
    "MLSFormatError",
    "MissingCorpusError",
    "locate_corpus",
    "read_transcripts",
    "read_handles",
    "check_audio",
]

PROBLEM_KINDS: tuple[str, ...] = (
    "no_tab",
    "bad_encoding",
    "bad_id",
    "empty_text",
    "duplicate_id",
    "unknown_handle",
    "missing_audio",
    "unreadable_audio",
    "undecodable_audio",
    "bad_sample_rate",
    "bad_channels",
    "empty_audio",
)


@dataclass(frozen=True)
class Problem:
    """One bad input line: ``kind`` is one of :data:`PROBLEM_KINDS`.

    ``utt`` is set only when an otherwise parsed utterance must be dropped (bad audio); lines
    that never became an :class:`Utterance` (no tab, empty text, duplicate, ...) leave it ``None``.
    """

    kind: str
    file: Path
    line: int
    message: str
    utt: Optional[str] = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Utterance:
    """A transcript line that parsed: id, text, expected audio path and where it came from."""

    utt: UttId
    text: str
    audio: Path
    file: Path
    line: int


@dataclass
class SplitScan:
    """Result of reading one ``transcripts.txt``: good utterances, every id seen, problems."""

    transcripts: Path
    utterances: list[Utterance] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)


class MLSFormatError(ValueError):
    """The MLS input is malformed; ``problems`` lists each bad line (may be empty for a missing file)."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)

    @classmethod
    def from_problems(cls, problems: Sequence[Problem], shown: int = 20) -> "MLSFormatError":
        """One message listing the first ``shown`` problems (``file:line: what``)."""
        lines = [str(p) for p in problems[:shown]]
        if len(problems) > shown:
            lines.append(f"... and {len(problems) - shown} more")
        head = f"{len(problems)} bad utterance(s) in the MLS input (use skip_bad_utts to drop them):"
        return cls("\n".join([head, *lines]), problems)


class MissingCorpusError(MLSFormatError):
    """A language folder or a file that the release must have is absent."""


def locate_corpus(mls_root: Path, lang: Language) -> tuple[Path, str]:
    """Return ``(language folder, audio extension)``: ``mls_<name>`` (flac), else ``mls_<name>_opus``."""
    for folder, ext in ((lang.mls_dir, "flac"), (lang.mls_opus_dir, "opus")):
        candidate = mls_root / folder
        if candidate.is_dir():
            return candidate, ext
    raise MissingCorpusError(
        f"no MLS release for {lang.code!r} under {mls_root}: expected {lang.mls_dir}/ or {lang.mls_opus_dir}/"
    )


def _decoded_lines(path: Path) -> Iterator[tuple[int, Optional[str]]]:
    """``(line number, text without newline)``; text is ``None`` for a line that is not UTF-8."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                yield lineno, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                yield lineno, None


def read_transcripts(split_dir: Path, ext: str) -> SplitScan:
    """Parse ``split_dir/transcripts.txt`` (``<utt>\\t<text>`` lines; blank lines are ignored).

    Checks the line has a tab, the id has MLS shape, the text is not empty and the id is new.
    Audio is not opened here (see :func:`check_audio`); only the expected path is computed.
    """
    path = split_dir / "transcripts.txt"
    if not path.is_file():
        raise MissingCorpusError(f"{path}: transcripts file not found")
    scan = SplitScan(transcripts=path)
    first_line: dict[str, int] = {}
    for lineno, line in _decoded_lines(path):
        if line is None:
            scan.problems.append(Problem("bad_encoding", path, lineno, "line is not valid UTF-8"))
            continue
        if not line.strip():
            continue
        if "\t" not in line:
            scan.problems.append(Problem("no_tab", path, lineno, f"no tab between utterance id and text: {line[:60]!r}"))
            continue
        utt_text, text = line.split("\t", 1)
        utt_text = utt_text.strip()
        try:
            utt = parse_utt_id(utt_text)
        except ValueError as exc:
            scan.problems.append(Problem("bad_id", path, lineno, str(exc)))
            continue
        if utt_text in first_line:
            scan.problems.append(
                Problem("duplicate_id", path, lineno, f"duplicate utterance id {utt_text} (first on line {first_line[utt_text]})")
            )
            continue
        first_line[utt_text] = lineno
        scan.seen_ids.add(utt_text)
        text = " ".join(text.split())
        if not text:
            scan.problems.append(Problem("empty_text", path, lineno, f"empty transcript for {utt_text}"))
            continue
        scan.utterances.append(Utterance(utt, text, audio_path(split_dir, utt, ext), path, lineno))
    return scan


def read_handles(paths: Iterable[Path], known_ids: set[str]) -> tuple[list[str], list[Problem]]:
    """Read ``handles.txt`` files (one utterance id a line) and return their union in first-seen order.

    A handle that is not in ``known_ids`` is a ``unknown_handle`` problem; a missing file raises
    :class:`MissingCorpusError`.
    """
    handles: list[str] = []
    seen: set[str] = set()
    problems: list[Problem] = []
    for path in paths:
        if not path.is_file():
            raise MissingCorpusError(f"{path}: handles file not found (needed for the training subset)")
        for lineno, line in _decoded_lines(path):
            if line is None:
                raise MLSFormatError(f"{path}:{lineno}: line is not valid UTF-8")
            handle = line.strip()
            if not handle:
                continue
            if handle not in known_ids:
                problems.append(Problem("unknown_handle", path, lineno, f"handle {handle} is not in the train transcripts"))
                continue
            if handle not in seen:
                seen.add(handle)
                handles.append(handle)
    return handles, problems


def _audio_problem(job: tuple[str, int]) -> Optional[tuple[str, str]]:
    """Worker: ``(kind, message)`` for an unusable audio file, ``None`` when it is fine."""
    path, sample_rate = job
    if not Path(path).is_file():
        return "missing_audio", f"audio file not found: {path}"
    try:
        info = sf.info(path)
    except Exception as exc:  # soundfile raises several types for corrupt files
        return "unreadable_audio", f"cannot read audio {path}: {error_text(exc)}"
    if info.samplerate != sample_rate:
        return "bad_sample_rate", f"{path} has sample rate {info.samplerate} Hz, expected {sample_rate} Hz"
    if info.channels != 1:
        return "bad_channels", f"{path} has {info.channels} channels, expected 1 (mono)"
    if info.frames <= 0:
        return "empty_audio", f"{path} has no samples"
    problem = decode_problem(path, info.frames)
    return None if problem is None else ("undecodable_audio", problem)


def check_audio(
    utterances: list[Utterance], nj: int = 1, sample_rate: int = SAMPLE_RATE, desc: str = "audio", progress: bool = True
) -> list[Problem]:
    """Check each utterance's audio header (``soundfile.info``), then decode the file fully once
    (a truncated file keeps a header that promises every sample), with ``nj`` processes.

    Problems name the transcript line of the utterance and the audio path.
    """
    jobs = [(str(u.audio), sample_rate) for u in utterances]
    problems: list[Problem] = []
    for utt, result in zip(utterances, parallel_map(_audio_problem, jobs, nj=nj, desc=desc, progress=progress)):
        if result is not None:
            kind, message = result
            problems.append(Problem(kind, utt.file, utt.line, f"{utt.utt}: {message}", str(utt.utt)))
    return problems
