"""at_core.ingest."""
