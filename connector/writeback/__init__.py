"""Write-back of health scores onto ServiceNow accounts.

Entry points (the CLI and the daemon call these):

* :func:`run_writeback` — push the latest KPI health snapshot, verify each
  field in the instance's answer, audit every attempt; returns a
  :class:`WritebackResult` (``failed`` > 0 means the run failed).
* :func:`install_fields` — create the configured fields, choices, form/list
  entries (and the optional history table), or write them as an update set.
"""

from connector.writeback.install import InstallResult, install_fields
from connector.writeback.runner import WritebackResult, run_writeback

__all__ = ["InstallResult", "WritebackResult", "install_fields", "run_writeback"]
