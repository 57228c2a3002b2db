"""Find session files, in the reference's order."""

from __future__ import annotations

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


def batches(files: list[Path], max_bytes: int) -> list[list[tuple[int, Path]]]:
    """Consecutive files grouped so that each group holds about ``max_bytes`` at most.

    A file larger than the limit is a batch of its own. Each file keeps its index in the
    run's order.
    """
    groups: list[list[tuple[int, Path]]] = []
    current: list[tuple[int, Path]] = []
    size = 0
    for index, path in enumerate(files):
        file_size = path.stat().st_size
        if current and size + file_size > max_bytes:
            groups.append(current)
            current, size = [], 0
        current.append((index, path))
        size += file_size
    if current:
        groups.append(current)
    return groups
