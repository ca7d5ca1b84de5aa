"""One exception tree for the whole package.

Every error a user can cause (bad config, bad input rows, a store in the wrong state) is an
``AuctionTraderError``; the Rust extension maps its domain errors onto the same classes, so
callers catch one family whatever layer raised it.
"""

from __future__ import annotations


class AuctionTraderError(Exception):
    """Base of every error raised on purpose by auction-trader."""


class ConfigError(AuctionTraderError):
    """A configuration file, override or environment value is invalid (names key and file)."""


class InputError(AuctionTraderError):
    """Input data is malformed; the message names file, line and field."""


class StorageError(AuctionTraderError):
    """A store is missing, locked, of an unknown schema version, or would be half-written."""


class CoreError(AuctionTraderError):
    """An error raised inside the Rust core (invalid input or config reaching a kernel)."""


class CoreConfigError(CoreError, ConfigError):
    """The Rust core refused a configuration value (names the key): a ``ConfigError``."""


class CoreInputError(CoreError, InputError):
    """The Rust core refused input data or its order (names where): an ``InputError``."""
