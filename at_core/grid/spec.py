"""Grid files: which config keys to sweep, validated and split by pipeline stage.

A grid file (``configs/grid/*.yaml``) lists values for any configuration key::

    name: demo
    metric: net_pnl        # what "best" means (default net_pnl), mode max|min
    params:
      alpha_bin: [0.2, 0.25, 0.3]                  # a list
      accept_outside_k: {from: 2, to: 5, step: 1}  # an inclusive range with a step
    set: {taker_fee_bps: 5.5}                      # fixed overrides for the whole sweep
    search: {algorithm: grid}                      # grid (default) | random | optuna
    validation: {walk_forward: {train_days: 7, test_days: 1}}  # see validation_spec

Everything else comes from ``configs/default.yaml`` and ``--set``. Every value is validated
through the same pydantic model as a config file, before any work starts, and the keys are
split by the model's stage tags: *feature* keys (stage1/stage2, features must be recomputed)
form the feature grid, one Ray Tune trial per point; *strategy* keys form the strategy grid run
inside each trial by the Rust batch runner. The split is derived, never hand-listed.

The search algorithm chooses which *feature* points become trials; the strategy grid inside a
trial is always exhaustive (a whole strategy grid costs about as much as one Tune trial's
overhead, so sampling it would save nothing). ``grid`` runs every feature point; ``random``
runs ``num_samples`` distinct feature points drawn with ``seed`` (without replacement, so no
trial is wasted on a repeat, and a resumed run draws the same points); ``optuna`` lets
Optuna's TPE sampler (through Ray Tune's ``OptunaSearch``) pick ``num_samples`` trials
adaptively from the trials already scored. Optuna may suggest a point twice; the repeat is
answered from the stored result, not recomputed.

"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from at_core.config import Settings, load_yaml
from at_core.errors import ConfigError
from at_core.grid.validation_spec import ValidationSpec, parse_validation

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


SEARCH_ALGORITHMS = ("grid", "random", "optuna")


@dataclass(frozen=True)
class SearchSpec:
    """How feature points are chosen: ``grid`` (all), ``random`` or ``optuna`` (``num_samples``)."""

    algorithm: str = "grid"
    num_samples: int | None = None
    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "num_samples": self.num_samples, "seed": self.seed}


def _parse_search(raw: Any, source: str) -> SearchSpec:
    if raw is None:
        return SearchSpec()
    if isinstance(raw, str):
        raw = {"algorithm": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: search: expected a mapping like {{algorithm: grid}}")
    unknown = set(raw) - {"algorithm", "num_samples", "seed"}
    if unknown:
        raise ConfigError(f"{source}: search: unknown key(s) {sorted(unknown)}")
    algo = str(raw.get("algorithm", "grid"))
    if algo not in SEARCH_ALGORITHMS:
        raise ConfigError(
            f"{source}: search.algorithm: {algo!r} is not one of {', '.join(SEARCH_ALGORITHMS)}"
        )
    n = raw.get("num_samples")
    if algo == "grid":
        if n is not None:
            raise ConfigError(f"{source}: search.num_samples: only for random or optuna search")
    elif not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ConfigError(
            f"{source}: search.num_samples: {algo} search needs a positive integer, got {n!r}"
        )
    seed = raw.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"{source}: search.seed: expected an integer, got {seed!r}")
    return SearchSpec(algo, n, seed)


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
    search: SearchSpec = field(default_factory=SearchSpec)
    validation: ValidationSpec = field(default_factory=ValidationSpec)

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
    def n_grid_combinations(self) -> int:
        """Size of the full grid (every feature point x every strategy point)."""
        return self.n_feature_points * self.n_strategy_points

    @property
    def n_planned_trials(self) -> int:
        """Trials the search runs: every feature point for grid, ``num_samples`` otherwise
        (random never repeats a point, so it is capped at the number of feature points)."""
        if self.search.algorithm == "grid" or self.search.num_samples is None:
            return self.n_feature_points
        if self.search.algorithm == "random":
            return min(self.search.num_samples, self.n_feature_points)
        return self.search.num_samples

    @property
    def n_combinations(self) -> int:
        """Combinations the search evaluates (an upper bound for optuna, which may repeat)."""
        return self.n_planned_trials * self.n_strategy_points

    def planned_points(self) -> list[dict[str, Any]]:
        """The feature points a grid or random search runs, in a fixed order (resumable)."""
        points = self.feature_points()
        if self.search.algorithm == "random":
            rng = random.Random(self.search.seed)
            idx = sorted(rng.sample(range(len(points)), self.n_planned_trials))
            points = [points[i] for i in idx]
        elif self.search.algorithm != "grid":
            raise ValueError(f"{self.search.algorithm} search picks its points adaptively")
        return points

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
        doc: dict[str, Any] = {"base": self.base.model_dump(mode="json"), "params": self.params}
        if self.search != SearchSpec():
            doc["search"] = self.search.as_dict()
        blob = json.dumps(doc, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def point_key(point: dict[str, Any]) -> str:
    """Canonical text of a parameter point (used to recognise finished trials on resume)."""
    return json.dumps(point, sort_keys=True, separators=(",", ":"))


#: Settings the grid's tables cannot honour (they need ticks or a funding history per
#: trial): refused with the reason, never evaluated as something else.
GRID_UNSUPPORTED = {"stop_fill_mode": "tick_path", "funding_source": "history"}


def parse_grid(data: dict[str, Any], base: Settings, source: str = "<dict>") -> GridSpec:
    """Validate a grid mapping against the config model and split its keys by stage."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a grid file must be a mapping")
    unknown = set(data) - {
        "name", "params", "metric", "mode", "set", "description", "search", "validation"
    }  # fmt: skip
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
    from at_core.backtest import metric_names

    if metric not in metric_names():
        raise ConfigError(
            f"{source}: metric {metric!r} is not a backtest metric; one of: "
            f"{', '.join(metric_names())}"
        )
    mode = str(data.get("mode", "max"))
    if mode not in ("max", "min"):
        raise ConfigError(f"{source}: mode must be max or min, got {mode!r}")
    for key, value in GRID_UNSUPPORTED.items():
        if getattr(base, key) == value or value in params.get(key, []):
            raise ConfigError(
                f"{source}: {key}: {value} is not evaluated by the grid (its tables carry "
                "neither the tick path nor the funding history, so every combination would be "
                f"priced as with the default): sweep without it, then check a chosen "
                f"combination with `auction-trader backtest --set {key}={value}`"
            )
    return GridSpec(
        name=str(data.get("name") or Path(source).stem),
        base=base,
        params=params,
        metric=metric,
        mode=mode,
        source=source,
        feature_keys=feature_keys,
        strategy_keys=strategy_keys,
        search=_parse_search(data.get("search"), source),
        validation=parse_validation(data.get("validation"), source, metric),
    )


def load_grid(path: str | Path, base: Settings) -> GridSpec:
    p = Path(path)
    try:
        data = load_yaml(p.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read grid file {p}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    return parse_grid(data, base, str(p))
