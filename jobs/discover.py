"""Find session files, in the reference's order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SESSION_GLOB = "*.jsonl"


class InputError(Exception):
    """An input the job cannot start on; the message is shown to the user as is."""


def find_session_files(inputs: list[Path]) -> list[Path]:
    """Every session file under the inputs, in the given order.

    A directory is searched recursively and its files sorted as ``sorted(Path.rglob())``
    sorts them (by path parts, not by string), as the reference does.
    """
    found: list[Path] = []
    for path in inputs:
        if path.is_dir():
            files = sorted(p for p in path.rglob(SESSION_GLOB) if p.is_file())
            if not files:
                raise InputError(f"no session files ({SESSION_GLOB}) under {path}")
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"no such file or directory: {path}")
    return found


@dataclass(frozen=True)
class Piece:
    """Whole lines of one file: a file, or a part of a large one cut after a ``\\n``."""

    file_index: int  # position of the file in the run's order
    path: Path
    first_line: int  # 1-based line number of the first line in ``data``
    data: bytes
    ends_file: bool


def _line_breaks(data: bytes) -> int:
    """Lines ended in ``data`` under universal newlines (``\\n``, ``\\r\\n``, a lone ``\\r``)."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def read_pieces(files: list[Path], max_bytes: int) -> Iterator[Piece]:
    """Each file in pieces of about ``max_bytes``, cut at line ends, read lazily.

    A line longer than ``max_bytes`` makes its piece longer; no line is ever cut.
    """
    for file_index, path in enumerate(files):
        if path.stat().st_size <= max_bytes:
            yield Piece(file_index, path, 1, path.read_bytes(), ends_file=True)
            continue
        first_line = 1
        carry = b""
        with path.open("rb") as handle:
            while True:
                chunk = handle.read(max_bytes)
                if not chunk:
                    yield Piece(file_index, path, first_line, carry, ends_file=True)
                    break
                data = carry + chunk if carry else chunk  # no copy for a file read in one go
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # no line end yet: read on
                    carry = data
                    continue
                piece, carry = (data, b"") if cut == len(data) else (data[:cut], data[cut:])
                yield Piece(file_index, path, first_line, piece, ends_file=False)
                first_line += _line_breaks(piece)


def batches(files: list[Path], max_bytes: int) -> Iterator[list[Piece]]:
    """Consecutive pieces of the files, grouped into batches of about ``max_bytes``."""
    batch: list[Piece] = []
    size = 0
    for piece in read_pieces(files, max_bytes):
        if batch and size + len(piece.data) > max_bytes:
            yield batch
            batch, size = [], 0
        batch.append(piece)
        size += len(piece.data)
    if batch:
        yield batch
