"""at_core.live."""
