"""at_core.exchange."""
