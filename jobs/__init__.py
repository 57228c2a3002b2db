"""The job's command line and IO."""

import os

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
