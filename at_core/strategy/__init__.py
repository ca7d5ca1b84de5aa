"""at_core.strategy."""
