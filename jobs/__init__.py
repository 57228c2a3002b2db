"""The job's command line and IO."""

import os
import sys

# polars allocates with jemalloc. Its defaults give every thread of a 2-core machine one
# of 8 arenas, and memory freed in one arena is not reused by another: on this job's
# cycle of large short-lived batch buffers, built by one thread and dropped by another,
# that is fresh pages and page faults (a fifth of the run's CPU went to the kernel).
# One arena, dirty pages returned after 5 s by a background thread and no muzzy stage:
# 480K -> 220K page faults, 5.8 -> 5.5 s and 830 -> 725 MiB peak on the 1 GB bench
# archive. jemalloc reads this once, when polars is first loaded, so it is set before
# anything imports polars; a value set by the user wins.
os.environ.setdefault(
    "_RJEM_MALLOC_CONF", "background_thread:true,narenas:1,dirty_decay_ms:5000,muzzy_decay_ms:0"
)
# numpy's OpenBLAS starts a thread per core that spins waiting for matrix work this job
# never gives it (1% of the CPU on the bench archive).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# Each batch's queries run on frames already in memory, a few tens of MB: polars' default
# (streaming where it can) cuts them into morsels across its async executor, which costs
# more than it overlaps here (1 GB bench archive: 4.9 -> 4.7 s, 30 MiB more peak).
os.environ.setdefault("POLARS_ENGINE_AFFINITY", "in-memory")


def _keep_freed_memory_for_reuse() -> None:
    """Tell glibc's malloc to serve large blocks from its heap and to keep what is freed.

    Python's bytes (a file read whole) and numpy's arrays (the word count's temporaries,
    1 MB at a time) come from glibc. By default a block over 128 KB to 32 MB is mapped
    fresh, and freed memory at the top of the heap is returned, so every batch faults
    in new zeroed pages. With blocks up to 256 MB from the heap and up to 512 MB kept,
    they are reused. 1 GB bench archive, six alternating pairs of runs: 4.17 -> 4.05 s,
    sys time 1.08 -> 0.89 s, page faults about a fifth fewer, peak RSS 817 -> 869 MiB
    (the kept memory). Set here rather than through ``MALLOC_*`` variables, which glibc
    reads only when a process starts; a variable the user set wins.
    """
    try:
        libc_version = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):  # not a system that names its C library
        return
    if not libc_version.startswith("glibc") or any(
        name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
    ):
        return
    import ctypes  # noqa: PLC0415  (only where glibc is)

    libc = ctypes.CDLL(None)  # the C library the interpreter runs on
    m_trim_threshold, m_mmap_threshold = -1, -3  # mallopt's parameter numbers in malloc.h
    libc.mallopt(m_mmap_threshold, 256 << 20)
    libc.mallopt(m_trim_threshold, 512 << 20)


_keep_freed_memory_for_reuse()


def entry() -> None:
    """The ``compound`` command. Its modules (polars, pyarrow, the CLI's) take about half a
    second to import: Ctrl-C then is an interrupted run like any other (one line, exit
    130), not the traceback of an import; so is a Ctrl-C between the import and the
    command's own handling of it."""
    try:
        from jobs.cli import entry as run_command  # noqa: PLC0415

        run_command()
    except KeyboardInterrupt:
        print("compound: interrupted; previous outputs left as they were", file=sys.stderr)
        sys.exit(130)
