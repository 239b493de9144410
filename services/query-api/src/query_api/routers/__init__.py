"""HTTP routes of query-api."""
