"""Serve the emulated instance in its own process, with a benchmark control port.

Usage::

    .venv/bin/python bench/emulator_proc.py --db bench/results/emu-10000.db \
        --accounts 10000 --ready FILE

It serves the product's :class:`~connector.emulator.instance.Instance` and
:class:`~connector.emulator.app.EmulatorApp` on a threaded werkzeug server, as
``csm-sync emulator`` does, so the emulator's CPU and memory never count
against the measured tool. In front of the app sits one extra path the CLI
lacks and the harness needs:

* ``GET /bench/stats``: the instance's request counter and mutator counts;
* ``POST /bench/mutator`` ``{"rate": 50, "tables": [...], "delete_ratio": 0.1}``
  starts the background mutator (``rate`` 0 stops it).

Faults (``latency_ms``, ``latency_per_row_ms``) go through the product's own
``POST /emulator/faults``. When the server is listening, its URL is written to
the ``--ready`` file.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from connector.emulator.app import EmulatorApp
from connector.emulator.instance import Instance

LOG = logging.getLogger("bench.emulator")


class QuietHandler(WSGIRequestHandler):
    """No access log: the benchmark sends hundreds of thousands of requests."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return

    def log(self, type: str, message: str, *args: Any) -> None:
        LOG.debug(message, *args)


class BenchControl:
    """WSGI wrapper: ``/bench/*`` answered here, everything else by the app."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.app = EmulatorApp(instance)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/bench/"):
            return self.app(environ, start_response)
        request = Request(environ)
        if path == "/bench/stats":
            body: dict[str, Any] = self.stats()
        elif path == "/bench/mutator" and request.method == "POST":
            body = self.mutator(request.get_json(force=True) or {})
        else:
            body = {"error": f"unknown bench path {path}"}
        response = Response(json.dumps(body), content_type="application/json")
        return response(environ, start_response)

    def stats(self) -> dict[str, Any]:
        mutator = self.instance._mutator  # read-only peek at the running counts
        return {
            "request_count": self.instance.request_count,
            "mutator_updates": mutator.updates if mutator else 0,
            "mutator_deletes": mutator.deletes if mutator else 0,
            "rate_limited": self.rate_limited(),
        }

    def rate_limited(self) -> int:
        """Requests the rate-limit rules refused (429) so far, all rules and users."""
        limits = {r.sys_id: r.limit for r in self.app.faults.rate_limit_rules}
        counts = self.instance.rate_limiter._counts  # read-only peek
        return sum(
            max(0, count - limits.get(rule, count))
            for (rule, _, _), count in counts.items()
        )

    def mutator(self, body: dict[str, Any]) -> dict[str, Any]:
        before = self.stats()
        self.instance.stop_mutator()
        rate = float(body.get("rate", 0))
        if rate > 0:
            self.instance.start_mutator(
                rate,
                tables=body.get("tables"),
                seed=int(body.get("seed", 1)),
                delete_ratio=float(body.get("delete_ratio", 0.1)),
            )
        return before


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="SQLite file; reused if filled")
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", default="2026-12-01", help="dataset end date")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready", required=True, help="write the URL here")
    args = parser.parse_args(argv)

    from datetime import date

    instance = Instance(
        accounts=args.accounts,
        seed=args.seed,
        as_of=date.fromisoformat(args.as_of),
        db_path=args.db,
    )
    server = make_server(
        "127.0.0.1",
        args.port,
        BenchControl(instance),
        threaded=True,
        request_handler=QuietHandler,
    )
    Path(args.ready).write_text(f"http://127.0.0.1:{server.server_port}")

    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        instance.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
