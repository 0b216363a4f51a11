"""The agent: daemon scheduling, the one-command demo, operator endpoint."""
