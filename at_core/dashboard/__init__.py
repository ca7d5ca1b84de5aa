"""at_core.dashboard."""
