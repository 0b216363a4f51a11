"""csm-sync: a ServiceNow Customer Service Management connector and sync agent."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("csm-sync")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
