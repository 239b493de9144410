"""HTTP routes of rerun-api."""
