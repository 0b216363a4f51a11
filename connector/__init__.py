"""csm-sync: a ServiceNow Customer Service Management connector and sync agent."""

__version__ = "0.1.0"

__all__ = ["__version__"]
