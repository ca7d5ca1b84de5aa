"""at_core.storage."""
