"""Live Status: the queries behind the live dashboard."""
