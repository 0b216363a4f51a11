"""writeback package."""
