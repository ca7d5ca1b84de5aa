"""Grid files: which config keys to sweep, validated and split by pipeline stage.

A grid file (``configs/grid/*.yaml``) lists values for any configuration key::

    name: demo
    metric: net_pnl        # what "best" means (default net_pnl), mode max|min
    params:
      alpha_bin: [0.2, 0.25, 0.3]                  # a list
      accept_outside_k: {from: 2, to: 5, step: 1}  # an inclusive range with a step
    set: {taker_fee_bps: 5.5}                      # fixed overrides for the whole sweep

Everything else comes from ``configs/default.yaml`` and ``--set``. Every value is validated
through the same pydantic model as a config file, before any work starts, and the keys are
split by the model's stage tags: *feature* keys (stage1/stage2, features must be recomputed)
form the feature grid, one Ray Tune trial per point; *strategy* keys form the strategy grid run
inside each trial by the Rust batch runner. The split is derived, never hand-listed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from at_core.config import Settings
from at_core.errors import ConfigError

FEATURE_STAGES = ("stage1", "stage2")
STRATEGY_STAGES = ("strategy",)


def _expand_range(key: str, spec: dict[str, Any], source: str) -> list[Any]:
    unknown = set(spec) - {"from", "to", "step"}
    if unknown or not {"from", "to", "step"} <= set(spec):
        raise ConfigError(
            f"{source}: params.{key}: a range needs exactly from, to, step (got {sorted(spec)})"
        )
    lo, hi, step = (Decimal(str(spec[k])) for k in ("from", "to", "step"))
    if step <= 0 or hi < lo:
        raise ConfigError(f"{source}: params.{key}: need step > 0 and to >= from")
    n = int((hi - lo) / step) + 1
    if n > 100_000:
        raise ConfigError(f"{source}: params.{key}: range has {n} values (limit 100000)")
    vals = [lo + i * step for i in range(n)]
    as_int = all(v == v.to_integral_value() for v in (lo, step))
    return [int(v) if as_int else float(v) for v in vals]


@dataclass
class GridSpec:
    """A validated sweep: the base settings and the values of each swept key."""

    name: str
    base: Settings
    params: dict[str, list[Any]]
    metric: str = "net_pnl"
    mode: str = "max"
    source: str = "<dict>"
    feature_keys: list[str] = field(default_factory=list)
    strategy_keys: list[str] = field(default_factory=list)

    @property
    def n_feature_points(self) -> int:
        n = 1
        for k in self.feature_keys:
            n *= len(self.params[k])
        return n

    @property
    def n_strategy_points(self) -> int:
        n = 1
        for k in self.strategy_keys:
            n *= len(self.params[k])
        return n

    @property
    def n_combinations(self) -> int:
        return self.n_feature_points * self.n_strategy_points

    def feature_points(self) -> list[dict[str, Any]]:
        keys = self.feature_keys
        return [
            dict(zip(keys, vals, strict=True))
            for vals in itertools.product(*(self.params[k] for k in keys))
        ]

    def strategy_points(self) -> list[dict[str, Any]]:
        keys = self.strategy_keys
        return [
            dict(zip(keys, vals, strict=True))
            for vals in itertools.product(*(self.params[k] for k in keys))
        ]

    def fingerprint(self) -> str:
        """Stable hash of everything that defines the sweep's results (for run ids/resume)."""
        blob = json.dumps(
            {"base": self.base.model_dump(mode="json"), "params": self.params}, sort_keys=True
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def point_key(point: dict[str, Any]) -> str:
    """Canonical text of a parameter point (used to recognise finished trials on resume)."""
    return json.dumps(point, sort_keys=True, separators=(",", ":"))


def parse_grid(data: dict[str, Any], base: Settings, source: str = "<dict>") -> GridSpec:
    """Validate a grid mapping against the config model and split its keys by stage."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a grid file must be a mapping")
    unknown = set(data) - {"name", "params", "metric", "mode", "set", "description"}
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {sorted(unknown)}")
    fixed = data.get("set") or {}
    if fixed:
        merged = base.model_dump()
        for k, v in fixed.items():
            if k not in Settings.model_fields:
                raise ConfigError(f"{source}: set.{k}: unknown config key")
            merged[k] = v
        try:
            base = Settings.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(
                f"{source}: set: {exc.errors()[0]['loc'][0]}: {exc.errors()[0]['msg']}"
            ) from None
    raw_params = data.get("params") or {}
    if not isinstance(raw_params, dict) or not raw_params:
        raise ConfigError(f"{source}: `params` must map config keys to value lists or ranges")
    params: dict[str, list[Any]] = {}
    feature_keys: list[str] = []
    strategy_keys: list[str] = []
    for key, spec in raw_params.items():
        if key not in Settings.model_fields:
            raise ConfigError(f"{source}: params.{key}: unknown config key")
        stage = Settings.stage_of(key)
        if stage not in FEATURE_STAGES + STRATEGY_STAGES:
            raise ConfigError(f"{source}: params.{key}: not sweepable (a {stage} setting)")
        if isinstance(spec, dict):
            values = _expand_range(key, spec, source)
        elif isinstance(spec, list):
            values = spec
        else:
            values = [spec]
        if not values:
            raise ConfigError(f"{source}: params.{key}: empty value list")
        for v in values:
            try:
                base.model_copy().__class__.model_validate({**base.model_dump(), key: v})
            except ValidationError as exc:
                raise ConfigError(
                    f"{source}: params.{key}: value {v!r}: {exc.errors()[0]['msg']}"
                ) from None
        if len({json.dumps(v) for v in values}) != len(values):
            raise ConfigError(f"{source}: params.{key}: duplicate values")
        params[key] = values
        (feature_keys if stage in FEATURE_STAGES else strategy_keys).append(key)
    metric = str(data.get("metric", "net_pnl"))
    mode = str(data.get("mode", "max"))
    if mode not in ("max", "min"):
        raise ConfigError(f"{source}: mode must be max or min, got {mode!r}")
    return GridSpec(
        name=str(data.get("name") or Path(source).stem),
        base=base,
        params=params,
        metric=metric,
        mode=mode,
        source=source,
        feature_keys=feature_keys,
        strategy_keys=strategy_keys,
    )


def load_grid(path: str | Path, base: Settings) -> GridSpec:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read grid file {p}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    return parse_grid(data, base, str(p))
