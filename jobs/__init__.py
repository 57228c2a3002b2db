"""The job's command line and IO."""

import os

# polars allocates with jemalloc, which by default keeps freed pages for 10 s before it
# returns them; on this job's cycle of large short-lived batch buffers that costs page
# faults (a third of the run was system time) and memory. Return dirty pages after 2 s
# from a background thread and skip the muzzy stage: 8.1 s -> 7.2 s and 945 -> 914 MiB
# peak on the 1 GB bench archive. jemalloc reads this once, when polars is first loaded,
# so it is set before anything imports polars; a value set by the user wins.
os.environ.setdefault("_RJEM_MALLOC_CONF", "background_thread:true,dirty_decay_ms:2000,muzzy_decay_ms:0")
# numpy's OpenBLAS starts a thread per core that spins waiting for matrix work this job
# never gives it (1% of the CPU on the bench archive).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
