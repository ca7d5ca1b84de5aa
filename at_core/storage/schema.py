"""Schemas of the four stores of SPEC §2.3 / §3.3, versioned.

Column names and types of the spec are kept exactly; extra columns (``seq``,
``exchange_side``, ``trade_id``) are appended, never renamed. Each store records its schema
version (DuckDB: table ``_schema``; SQLite: ``PRAGMA user_version``); opening a store written
by a newer version is refused instead of being silently misread.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1

# ---- DuckDB: raw.duckdb --------------------------------------------------------------
RAW_TRADES_DDL = """
CREATE TABLE IF NOT EXISTS raw_trades (
    ts_ms              BIGINT NOT NULL,
    price              DOUBLE NOT NULL,
    size               DOUBLE NOT NULL,
    inferred_side      TINYINT,
    quote_bid_px       DOUBLE,
    quote_ask_px       DOUBLE,
    quote_staleness_ms INTEGER,
    exchange_side      TINYINT,
    trade_id           VARCHAR,
    seq                BIGINT NOT NULL
)"""

RAW_QUOTES_DDL = """
CREATE TABLE IF NOT EXISTS raw_quotes (
    ts_ms  BIGINT NOT NULL,
    bid_px DOUBLE NOT NULL,
    bid_sz DOUBLE NOT NULL,
    ask_px DOUBLE NOT NULL,
    ask_sz DOUBLE NOT NULL,
    seq    BIGINT NOT NULL
)"""

# ---- DuckDB: features.duckdb ---------------------------------------------------------
BARS_1M_DDL = """
CREATE TABLE IF NOT EXISTS bars_1m (
    ts_min          BIGINT PRIMARY KEY,
    open            DOUBLE,
    high            DOUBLE,
    low             DOUBLE,
    close           DOUBLE,
    volume          DOUBLE,
    vwap            DOUBLE,
    trade_count     INTEGER,
    bid_px_close    DOUBLE,
    ask_px_close    DOUBLE,
    bid_sz_close    DOUBLE,
    ask_sz_close    DOUBLE,
    spread_close    DOUBLE,
    spread_avg_60m  DOUBLE
)"""

#: Minutes a recorded live feed gap touched (the live features actor writes them; the
#: minute's bar may lack trades the venue printed, so charts mark it rather than trust it).
MINUTE_FLAGS_DDL = """CREATE TABLE IF NOT EXISTS minute_flags (
    ts_min  BIGINT PRIMARY KEY,
    gap     BOOLEAN NOT NULL,
    reason  VARCHAR
)"""

FEATURES_1M_DDL = """
CREATE TABLE IF NOT EXISTS features_1m (
    ts_min                  BIGINT PRIMARY KEY,
    mid_close               DOUBLE,
    sigma_240               DOUBLE,
    bin_width               DOUBLE,
    poc                     DOUBLE,
    vah                     DOUBLE,
    val                     DOUBLE,
    va_coverage             DOUBLE,
    va_bin_count            INTEGER,
    of_1m                   DOUBLE,
    of_norm_1m              DOUBLE,
    qimb_close              DOUBLE,
    qimb_ema_60s            DOUBLE,
    ambiguous_trade_frac_1m DOUBLE,
    total_volume_4h         DOUBLE
)"""

DUCKDB_META_DDL = (
    "CREATE TABLE IF NOT EXISTS _schema (store VARCHAR PRIMARY KEY, version INTEGER NOT NULL)"
)

RAW_DDL = [RAW_TRADES_DDL, RAW_QUOTES_DDL]
FEATURES_DDL = [BARS_1M_DDL, FEATURES_1M_DDL]

# ---- SQLite: signals.db --------------------------------------------------------------
SIGNALS_DDL = [
    """CREATE TABLE IF NOT EXISTS signals_1m (
    ts_min                  INTEGER PRIMARY KEY,
    signal_breakin_long     INTEGER,
    signal_breakin_short    INTEGER,
    signal_breakout_long    INTEGER,
    signal_breakout_short   INTEGER,
    signal_failbreak_long   INTEGER,
    signal_failbreak_short  INTEGER,
    acceptance_state        TEXT,
    chosen_action           TEXT,
    reason_code             TEXT,
    feature_snapshot        TEXT
)""",
]

# ---- SQLite: execution.db ------------------------------------------------------------
EXECUTION_DDL = [
    """CREATE TABLE IF NOT EXISTS positions (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms_open          INTEGER NOT NULL,
    ts_ms_close         INTEGER,
    side                TEXT NOT NULL,
    entry_price         DOUBLE NOT NULL,
    exit_price          DOUBLE,
    qty_contracts       DOUBLE NOT NULL,
    qty_at_tp1          DOUBLE,
    stop_price          DOUBLE NOT NULL,
    tp1_price           DOUBLE,
    tp2_price           DOUBLE,
    strategy_tag        TEXT,
    status              TEXT,
    realized_pnl        DOUBLE,
    fees_paid           DOUBLE,
    funding_paid        DOUBLE,
    leverage_used       DOUBLE,
    risk_pct_used       DOUBLE
)""",
    """CREATE TABLE IF NOT EXISTS state_snapshots (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms           INTEGER NOT NULL,
    snapshot_type   TEXT,
    position_state  TEXT,
    acceptance_state TEXT,
    pending_orders  TEXT,
    account_state   TEXT
)""",
    """CREATE TABLE IF NOT EXISTS grid_search_results (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id          TEXT NOT NULL,
    params_json     TEXT NOT NULL,
    metrics_json    TEXT NOT NULL,
    created_at      INTEGER NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS grid_search_results_run ON grid_search_results(run_id)",
    # Additions: sweep bookkeeping, so that a crashed sweep resumes instead of redoing work.
    """CREATE TABLE IF NOT EXISTS grid_runs (
    run_id          TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    fingerprint     TEXT NOT NULL,
    grid_json       TEXT NOT NULL,
    n_combinations  INTEGER NOT NULL,
    status          TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    mlflow_run_id   TEXT
)""",
    """CREATE TABLE IF NOT EXISTS grid_trials (
    run_id          TEXT NOT NULL,
    trial_key       TEXT NOT NULL,
    n_rows          INTEGER NOT NULL,
    best_json       TEXT,
    node            TEXT,
    kernel_s        REAL,
    finished_at     INTEGER NOT NULL,
    PRIMARY KEY (run_id, trial_key)
)""",
    # Additions: a sweep's research statistics (`grid validate`; the latest computation).
    """CREATE TABLE IF NOT EXISTS grid_validation (
    run_id          TEXT PRIMARY KEY,
    computed_at     INTEGER NOT NULL,
    summary_json    TEXT NOT NULL
)""",
    # Additions: backtests (`auction-trader backtest`), keyed by run id. The spec's
    # `positions` / `signals_1m` keep their live meaning; a backtest never writes there.
    """CREATE TABLE IF NOT EXISTS backtest_runs (
    run_id          TEXT PRIMARY KEY,
    created_at      INTEGER NOT NULL,
    from_ts_min     INTEGER,
    to_ts_min       INTEGER,
    n_minutes       INTEGER NOT NULL,
    settings_json   TEXT NOT NULL,
    metrics_json    TEXT NOT NULL,
    report_dir      TEXT
)""",
    """CREATE TABLE IF NOT EXISTS backtest_trades (
    run_id              TEXT NOT NULL,
    trade_no            INTEGER NOT NULL,
    side                TEXT NOT NULL,
    setup               TEXT,
    entry_reason        TEXT,
    decision_ts_ms      INTEGER NOT NULL,
    fill_ts_ms          INTEGER NOT NULL,
    entry_price         DOUBLE NOT NULL,
    entry_maker         INTEGER,
    qty                 DOUBLE NOT NULL,
    stop_initial        DOUBLE,
    tp1_price_target    DOUBLE,
    tp2_price_target    DOUBLE,
    tp1_ts_ms           INTEGER,
    tp1_price           DOUBLE,
    tp1_qty             DOUBLE,
    exit_decision_ts_ms INTEGER,
    exit_ts_ms          INTEGER,
    exit_price          DOUBLE,
    exit_reason         TEXT,
    gross_pnl           DOUBLE,
    fees                DOUBLE,
    funding             DOUBLE,
    slippage_cost       DOUBLE,
    net_pnl             DOUBLE,
    PRIMARY KEY (run_id, trade_no)
)""",
]

# Columns added after a table's first release within the same schema version: created by
# ALTER TABLE on stores that predate them (additive only, never a rename).
SQLITE_ADDED_COLUMNS: list[tuple[str, str, str]] = [
    ("grid_trials", "kernel_s", "REAL"),
    # a combination's daily returns: float64 little-endian, one per day of its trial's
    # `daily_days` (a JSON list of UTC day numbers); what the sweep statistics read
    ("grid_search_results", "daily_returns", "BLOB"),
    ("grid_trials", "daily_days", "TEXT"),
    # a backtest's equity at every minute it evaluated (the curve its drawdown is measured
    # on): int64 / float64 little-endian, same length; what the dashboard draws
    ("backtest_runs", "equity_ts", "BLOB"),
    ("backtest_runs", "equity", "BLOB"),
]

# ---- Arrow schemas of the Parquet lake (same columns as the DuckDB raw tables) ---------
TRADES_ARROW = pa.schema(
    [
        pa.field("ts_ms", pa.int64(), nullable=False),
        pa.field("price", pa.float64(), nullable=False),
        pa.field("size", pa.float64(), nullable=False),
        pa.field("inferred_side", pa.int8()),
        pa.field("quote_bid_px", pa.float64()),
        pa.field("quote_ask_px", pa.float64()),
        pa.field("quote_staleness_ms", pa.int32()),
        pa.field("exchange_side", pa.int8()),
        pa.field("trade_id", pa.string()),
        pa.field("seq", pa.int64(), nullable=False),
    ]
)

QUOTES_ARROW = pa.schema(
    [
        pa.field("ts_ms", pa.int64(), nullable=False),
        pa.field("bid_px", pa.float64(), nullable=False),
        pa.field("bid_sz", pa.float64(), nullable=False),
        pa.field("ask_px", pa.float64(), nullable=False),
        pa.field("ask_sz", pa.float64(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
    ]
)

ARROW_SCHEMAS = {"trades": TRADES_ARROW, "quotes": QUOTES_ARROW}
