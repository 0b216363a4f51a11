"""servicenow package."""
