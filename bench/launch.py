"""Run a command from a small process and report its rusage: `python bench/launch.py CMD...`.

Linux keeps a process's peak-RSS mark across fork + exec, so a job started straight from the
(large) benchmark parent would report the parent's size. Started from this small launcher,
the job's peak RSS is its own (plus at most this launcher's ~10 MB). Stdout passes through;
the last line is `RUSAGE {json}`. Standard library only: no imports that grow the process.
"""

import json
import os
import subprocess
import sys
import time

t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - t0
sys.stdout.flush()
own = __import__("resource").getrusage(__import__("resource").RUSAGE_SELF).ru_maxrss
print("RUSAGE " + json.dumps({
    "rc": os.waitstatus_to_exitcode(status), "wall_s": wall,
    "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
    "launcher_rss_mb": own / 1024,
}), flush=True)  # fmt: skip
sys.exit(0)
