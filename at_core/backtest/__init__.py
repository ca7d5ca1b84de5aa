"""at_core.backtest."""
