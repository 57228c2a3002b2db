"""A SWE-agent ``.traj`` of 160 MB, nearly all of it a ``trajectory`` of large command
outputs beside a ``history`` of a few hundred messages, is read in bounded memory: its
peak stays near what the job takes for a small file, far below the document's size, and
it gives the pairs its history gives alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO

#: A command's output as SWE-agent records it: code, with the quotes, backslashes,
#: brackets and commas a scan must see through.
OUTPUT_LINE = 'result = parse(value, strict=True)  # "quoted" \\ [bracket] {brace}, comma\n'
STEPS = 160
OUTPUT_BYTES = 1 << 20
TASK = "Please fix the failing parser test in this repository: " + " ".join(f"detail{i}" for i in range(30))
ANSWER = " ".join(["The parser now accepts a trailing comma, and every test passes again."] * 12)


def _history(steps: int) -> list[dict[str, Any]]:
    history = [
        {"message_type": "system_prompt", "role": "system", "content": "You are an autonomous programmer."},
        {"message_type": "observation", "role": "user", "content": TASK},
    ]
    for step in range(steps):
        history += [
            {
                "message_type": "action",
                "role": "assistant",
                "content": f"Step {step}: I look at the file and run the tests again.",
                "action": f"open file{step}.py",
            },
            {
                "message_type": "observation",
                "role": "user",
                "content": f"[File: file{step}.py]\n{OUTPUT_LINE * 20}",
            },
        ]
    history.append({"message_type": "action", "role": "assistant", "content": ANSWER, "action": "submit"})
    return history


def _write_traj(path: Path, steps: int, output_bytes: int) -> None:
    """The trajectory first (as SWE-agent writes it), each step with its whole output."""
    output = json.dumps((OUTPUT_LINE * (output_bytes // len(OUTPUT_LINE) + 1))[:output_bytes])
    with path.open("w") as out:
        out.write('{\n  "environment": "main",\n  "trajectory": [\n')
        for step in range(steps):
            out.write(",\n" if step else "")
            out.write(
                f'    {{"action": "open file{step}.py", "observation": {output}, "thought": "step {step}"}}'
            )
        out.write('\n  ],\n  "history": ')
        out.write(json.dumps(_history(steps), indent=2))
        out.write(',\n  "info": {"exit_status": "submitted", "submission": "diff --git a/p.py b/p.py"}\n}\n')


#: Runs the command in its arguments and prints the peak resident memory of it (KiB).
#: The kernel counts into a child's peak the memory of the process it was started from
#: (at exec), which for a child of this test session is the session's own, over a GB:
#: the job is started from this small process instead.
MEASURE = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _peak_rss(target: Path, out: Path) -> int:
    """The peak resident memory, in bytes, of ``compound pairs target`` run on its own."""
    job = [sys.executable, "-m", "jobs.cli", "pairs", str(target), "--out", str(out)]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *job], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout) * 1024  # KiB on Linux


def test_a_large_document_is_read_in_bounded_memory(tmp_path: Path) -> None:
    (tmp_path / "large").mkdir()
    (tmp_path / "small").mkdir()
    large = tmp_path / "large" / "run.traj"
    _write_traj(large, STEPS, OUTPUT_BYTES)
    size = large.stat().st_size
    assert size > 160 << 20
    small = tmp_path / "small" / "run.traj"
    _write_traj(small, STEPS, 0)  # the same history, beside a trajectory of empty outputs
    small_peak = _peak_rss(small, tmp_path / "out-small")
    large_peak = _peak_rss(large, tmp_path / "out-large")
    # reading it whole took 14 times its size (4.5 GB for 318 MB)
    assert large_peak < 1 << 30
    assert large_peak - small_peak < size // 2, (large_peak >> 20, small_peak >> 20, size >> 20)
    stats = json.loads((tmp_path / "out-large" / "stats.json").read_text())
    assert (stats["messages"], stats["malformed_lines"], stats["damaged_files"]) == (3 + 2 * STEPS, 0, 0)
    for out in ("out-small", "out-large"):
        pairs = [json.loads(line) for line in (tmp_path / out / "pairs.jsonl").read_text().splitlines()]
        assert [(pair["terse"], pair["rich"]) for pair in pairs] == [(TASK, ANSWER)]
