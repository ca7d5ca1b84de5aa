"""Feature engine front end: ticks in the lake → ``bars_1m`` / ``features_1m`` (SPEC §4–§5).

The computation is the Rust engine (``at_core._core.FeatureEngine``); this package only moves
arrays between the tick lake, the engine and the stores. Design notes: ``docs/features.md``.
"""
