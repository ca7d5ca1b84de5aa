"""at_core.grid."""
