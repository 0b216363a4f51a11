"""Plumbing shared by the benchmark parts: the emulator process, measured runs.

Every measured tool runs as a child process, so its CPU and peak memory are its
own (not the harness's, not the emulator's). CPU comes from ``os.wait4``. Peak
memory does not: Linux carries a parent's resident size into the child's
``ru_maxrss`` across fork and exec (a ``python -c pass`` started from a 300 MB
process reports 311 MB), and the harness grows while it compares rows. So
:func:`measure` samples the child's own ``VmHWM`` (the high-water mark of its
address space, new at exec) from ``/proc``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
CSM_SYNC = str(Path(PYTHON).with_name("csm-sync"))
ADMIN = ("admin", "admin")


@dataclass
class Measured:
    """One child process run: wall seconds, peak RSS, exit status, output."""

    seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str = ""
    stderr: str = ""
    cpu_seconds: float = 0.0
    timed_out: bool = False

    def check(self, what: str) -> Measured:
        if self.timed_out:
            raise RuntimeError(f"{what} did not finish in {self.seconds:.0f} s")
        if self.returncode != 0:
            tail = "\n".join((self.stderr or self.stdout).splitlines()[-15:])
            raise RuntimeError(f"{what} exited {self.returncode}:\n{tail}")
        return self


def measure(
    argv: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> Measured:
    """Run ``argv`` to completion; wall time and its own peak RSS (wait4).

    With ``timeout`` the child is killed once it has run that long, and the
    result says so (``timed_out``): a tool too slow to wait for is a result.
    """
    started = time.perf_counter()
    with (
        open(os.devnull, "rb") as stdin,
        _Capture() as out,
        _Capture() as err,
    ):
        child = subprocess.Popen(
            argv,
            stdin=stdin,
            stdout=out.handle,
            stderr=err.handle,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        )
        killer = threading.Timer(timeout, child.kill) if timeout else None
        if killer:
            killer.start()
        watch = _HighWater(child.pid)
        try:
            _pid, status, usage = os.wait4(child.pid, 0)
        finally:
            watch.stop()
            if killer:
                killer.cancel()
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        return Measured(
            seconds=seconds,
            peak_rss_mb=watch.peak_kb / 1024
            if watch.peak_kb
            else usage.ru_maxrss / 1024,
            returncode=child.returncode,
            stdout=out.text(),
            stderr=err.text(),
            cpu_seconds=usage.ru_utime + usage.ru_stime,
            timed_out=bool(killer) and child.returncode == -signal.SIGKILL,
        )


class _HighWater:
    """The largest ``VmHWM`` of a running process, sampled every ``every`` s.

    VmHWM only grows, so the last sample before exit is the peak up to then; a
    rise within the final interval is the only thing it can miss.
    """

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.peak_kb = 0
        self._path = f"/proc/{pid}/status"
        self._done = threading.Event()
        self._every = every
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            self._sample()
            self._done.wait(self._every)

    def _sample(self) -> None:
        try:
            with open(self._path) as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                        return
        except (OSError, ValueError, IndexError):
            pass  # not started yet, or gone

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


class _Capture:
    """A temp file for a child's output (pipes could fill up and block it)."""

    def __enter__(self) -> _Capture:
        import tempfile

        self.handle = tempfile.TemporaryFile()
        return self

    def text(self) -> str:
        self.handle.seek(0)
        return self.handle.read().decode(errors="replace")

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


@dataclass
class Emulator:
    """``bench/emulator_proc.py`` as a child process (its own CPU and memory)."""

    db: Path
    accounts: int
    url: str = ""
    process: subprocess.Popen | None = None
    ready_seconds: float = 0.0
    session: requests.Session = field(default_factory=requests.Session)

    def start(self, timeout: float = 3600) -> Emulator:
        ready = self.db.with_suffix(f".{os.getpid()}.url")  # runs may overlap
        ready.unlink(missing_ok=True)
        started = time.perf_counter()
        logfile = self.db.with_suffix(f".{os.getpid()}.log")
        self.log = open(logfile, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                PYTHON,
                str(BENCH / "emulator_proc.py"),
                "--db",
                str(self.db),
                "--accounts",
                str(self.accounts),
                "--ready",
                str(ready),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        while not ready.exists():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"emulator exited; see {self.db.with_suffix('.log')}"
                )
            if time.perf_counter() - started > timeout:
                raise TimeoutError("emulator did not start")
            time.sleep(0.2)
        self.url = ready.read_text().strip()
        self.ready_seconds = time.perf_counter() - started
        self.session.auth = ADMIN
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
            self.log.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        return self.session.get(f"{self.url}/bench/stats", timeout=30).json()

    def cpu_seconds(self) -> float | None:
        """The emulator process's user+system CPU so far (Linux /proc), or None.

        Tool and instance share this machine's cores: the instance's share says
        how much CPU was left for the tool.
        """
        if self.process is None:
            return None
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)
        except OSError:
            return None
        utime, stime = (int(v) for v in fields[1].split()[11:13])
        return (utime + stime) / os.sysconf("SC_CLK_TCK")

    def requests(self) -> int:
        return int(self.stats()["request_count"])

    def faults(self, **changes: Any) -> None:
        reply = self.session.post(
            f"{self.url}/emulator/faults", json=changes, timeout=30
        )
        reply.raise_for_status()

    def mutator(
        self, rate: float, tables: list[str] | None = None, delete_ratio: float = 0.1
    ) -> dict[str, Any]:
        """Start (rate > 0) or stop the mutator; the counts before the change."""
        body = {"rate": rate, "tables": tables, "delete_ratio": delete_ratio}
        return self.session.post(
            f"{self.url}/bench/mutator", json=body, timeout=30
        ).json()

    def count(self, table: str, query: str = "") -> int:
        """Rows matching ``query`` (X-Total-Count of a one-row page)."""
        reply = self.session.get(
            f"{self.url}/api/now/table/{table}",
            params={
                "sysparm_query": query,
                "sysparm_fields": "sys_id",
                "sysparm_limit": "1",
            },
            timeout=300,
        )
        reply.raise_for_status()
        return int(reply.headers["X-Total-Count"])

    def keys(self, table: str, query: str = "", field: str = "sys_updated_on") -> dict:
        """``{sys_id: field}`` of every matching row (sys_id keyset paging)."""
        found: dict[str, str] = {}
        after = ""
        while True:
            where = "^".join(
                p for p in (query, f"sys_id>{after}" if after else "") if p
            )
            reply = self.session.get(
                f"{self.url}/api/now/table/{table}",
                params={
                    "sysparm_query": f"{where}^ORDERBYsys_id",
                    "sysparm_fields": f"sys_id,{field}",
                    "sysparm_limit": "10000",
                    "sysparm_no_count": "true",
                },
                timeout=300,
            )
            reply.raise_for_status()
            rows = reply.json()["result"]
            if not rows:
                return found
            found.update((r["sys_id"], r[field]) for r in rows)
            after = rows[-1]["sys_id"]


def copy_db(source: Path, target: Path) -> Path:
    """A scratch copy of an emulator DB (for parts that write to the instance)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    for suffix in ("", "-wal"):  # the WAL may hold pages not yet checkpointed
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
    return target


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """What ran the benchmark: cores, RAM, CPU model, Python, OS."""
    mem_kb = 0
    cpu = platform.processor()
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
