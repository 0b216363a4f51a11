"""Skip ijson's backend probe, which pysnow triggers on import and we never use.

pysnow imports ijson (its pinned 2.6) for streamed responses; csm-sync reads
every response through its own hook, so ijson's parser is never called. On
import, ijson tries its yajl backends in turn: the cffi one imports cffi and
pycparser and parses C declarations before finding no libyajl, and the ctypes
one searches for the library. Measured here: ``import ijson`` takes 78–90 ms
and ends on the pure-Python backend anyway, about 7% of a no-op ``csm-sync sync``
(1.1 s). Marking the yajl backends as absent makes ijson pick that same
pure-Python backend at once. A backend already imported is left alone.

Importing this module does it; the package imports it before the client.
"""

from __future__ import annotations

import sys

_YAJL_BACKENDS = (
    "ijson.backends.yajl2_c",
    "ijson.backends.yajl2_cffi",
    "ijson.backends.yajl2",
)


def skip_yajl_probe() -> None:
    """Make the yajl backends fail to import at once (a None module entry)."""
    if "ijson" in sys.modules:
        return  # its backend is chosen already
    for name in _YAJL_BACKENDS:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


skip_yajl_probe()
