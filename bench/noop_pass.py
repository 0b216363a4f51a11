"""A no-op incremental pass inside a running process, as the daemon runs it.

Usage::

    python bench/noop_pass.py CONFIG [--passes 3]

``csm-sync sync`` pays for starting Python and importing its libraries on every
run; the daemon (``csm-sync run``) pays that once and then opens a session and
runs ``run_incremental`` per scheduled pass. This runs one pass to warm up, then
times ``--passes`` more. Prints JSON: each pass's wall and CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import time

from connector.config import load_settings
from connector.sync.incremental import run_incremental


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings(args.config)
    run_incremental(settings, reconcile=False)  # warm-up: imports, first connect
    passes = []
    for _ in range(args.passes):
        wall, cpu = time.perf_counter(), time.process_time()
        results = run_incremental(settings, reconcile=False)
        passes.append(
            {
                "seconds": round(time.perf_counter() - wall, 3),
                "cpu_seconds": round(time.process_time() - cpu, 3),
                "changed": sum(r.inserted + r.updated + r.deleted for r in results),
                "ok": all(r.ok for r in results),
            }
        )
    print(json.dumps({"passes": passes}))


if __name__ == "__main__":
    main()
