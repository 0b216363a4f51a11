"""kpi package."""
