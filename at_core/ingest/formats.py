"""One small parser per input format, all producing the lake's columns.

Every parser returns, per kind (trades / quotes), the lake columns plus the physical line
of each row, and the rejects it found while parsing. Value rules shared by all formats
(positive prices and sizes, finite numbers, uncrossed quotes) live in ``validate.py`` so
no format can forget one.

Domain pitfalls handled here:

* Time is the exchange's own time of the event (Bybit ``timestamp``; Binance ``T``,
  which is the *trade* time of a trade and the *transaction* time of a bookTicker — not
  ``E``, the event (message) time; Tardis ``timestamp``), never the capture's local receive
  time, which lags by a variable delay.
* ``seq`` keeps the source's order of events inside one millisecond (Binance trade id /
  bookTicker update id; otherwise the line number, reversed for newest-first files such
  as old Bybit archives), because the lake sorts by (ts_ms, seq).
* The aggressor side is stored as ``exchange_side`` (+1 buy, -1 sell) when the venue
  gives it: Bybit ``side`` is the taker's side; Binance ``m`` / ``is_buyer_maker`` true
  means the buyer was the resting order, so the aggressor SOLD (-1).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from at_core.errors import InputError
from at_core.ingest import fastcsv
from at_core.ingest import timestamps as tsmod
from at_core.ingest.csvread import ColType, CsvData, Reject, read_csv, read_header


@dataclass
class KindRows:
    """Rows of one kind: lake columns (subset), their lines, and rows already rejected."""

    columns: dict[str, pa.Array | np.ndarray]
    lines: np.ndarray
    bad: np.ndarray
    names: dict[str, str] = field(default_factory=dict)  # lake column -> source field name
    field_bad: dict[str, np.ndarray] = field(default_factory=dict)  # source field -> bad rows


@dataclass
class Parsed:
    kinds: dict[str, KindRows]
    rejects: list[Reject]
    rows_read: int
    blank_lines: int = 0
    ts: tsmod.Detection | None = None
    notes: list[str] = field(default_factory=list)
    seq_is_trade_id: bool = False  # numeric trade ids: duplicates inside the file are checked
    #: The instrument the file says it holds, where it says (symbol column, Tardis
    #: ``exchange``, Binance ``s``); the importer checks it against the store's.
    symbol: str | None = None
    venue: str | None = None


@dataclass
class Options:
    mapping: dict[str, str] | None = None
    kind: str | None = None
    ts_unit: str | None = None
    #: The store's instrument facts (config ``instrument``, ``tick_size``): checked at
    #: import. ``None``: not checked (parser-level use).
    instrument: str | None = None
    tick_size: float | None = None
    #: What a generic CSV holds (other formats say it themselves).
    venue: str | None = None
    symbol: str | None = None


# ---- helpers ---------------------------------------------------------------------------
def map_values(
    arr: pa.Array, mapping: dict[str, int | None], *, allow_empty: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map a (dictionary or string) column through ``mapping`` (keys compared lower-case).

    Returns (int8 values, null mask, unknown mask). Works on the dictionary, so the cost
    is one ``take`` whatever the row count.
    """
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(arr)
    arr = (
        arr.cast(pa.dictionary(pa.int32(), pa.string()))
        if arr.type.index_type != pa.int32()
        else arr
    )
    words = [str(w).strip().lower() for w in arr.dictionary.to_pylist()]
    vals = np.zeros(len(words) + 1, dtype=np.int8)
    nulls = np.zeros(len(words) + 1, dtype=bool)
    unknown = np.zeros(len(words) + 1, dtype=bool)
    for i, w in enumerate(words):
        if w in mapping:
            v = mapping[w]
            if v is None:
                nulls[i] = True
            else:
                vals[i] = v
        elif w == "" and allow_empty:
            nulls[i] = True
        else:
            unknown[i] = True
    nulls[-1] = True  # null index (missing value)
    unknown[-1] = not allow_empty
    idx = (
        arr.indices.to_numpy(zero_copy_only=False)
        if arr.null_count == 0
        else pc.fill_null(arr.indices, len(words)).to_numpy(zero_copy_only=False)
    )
    return vals[idx], nulls[idx], unknown[idx]


def line_seq(lines: np.ndarray, ts: np.ndarray, bad: np.ndarray) -> tuple[np.ndarray, str]:
    """Sequence numbers from line order, reversed when the file is newest-first.

    Old Bybit archives list the newest trade first: their line order is the reverse of
    the event order, so same-millisecond trades must get decreasing line numbers as seq.
    """
    good = ts[~bad] if bad.any() else ts
    later, earlier = good[1:], good[:-1]  # views: no per-row temporaries but two masks
    asc, desc = int(np.count_nonzero(later > earlier)), int(np.count_nonzero(later < earlier))
    if desc > 0 and asc * 100 <= desc:  # (almost) every step goes back in time
        return (lines.max() + lines.min() - lines).astype(np.int64), "newest-first (reversed)"
    order = "ascending" if desc == 0 else f"mostly ascending ({desc} rows out of order, sorted)"
    return lines.astype(np.int64, copy=False), order


def all_int(arr: pa.Array) -> np.ndarray | None:
    """The values as int64 if every one is a plain integer, else None."""
    s = arr if pa.types.is_string(arr.type) else pc.cast(arr, pa.string())
    ok = pc.fill_null(pc.match_substring_regex(s, r"^[0-9]{1,18}$"), False)
    if not pc.all(ok).as_py():
        return None
    return pc.cast(s, pa.int64()).to_numpy(zero_copy_only=False)


def check_one_symbol(
    arr: pa.Array | pa.ChunkedArray, name: str, what: str = "symbols"
) -> str | None:
    """The one symbol of the file (``None`` when the column is empty); several: an error."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):  # look at the few dictionary entries in use
        used = pc.unique(arr.indices).drop_null()
        values = arr.dictionary.take(used)
    else:
        values = pc.unique(arr)
    syms = sorted({str(s) for s in values.to_pylist() if s})
    if len(syms) > 1:
        raise InputError(
            f"{name}: the file holds {len(syms)} {what} ({', '.join(syms[:5])}); "
            "the lake keeps one instrument: split the file by symbol first"
        )
    return syms[0] if syms else None


def _side_rejects(csv: CsvData, name: str, col: str, unknown: np.ndarray, expected: str) -> None:
    arr = csv.columns[col]
    for i in np.flatnonzero(unknown & ~csv.bad):
        v = arr[int(i)].as_py()
        what = "missing value" if v in (None, "") else f"unknown side {v!r} (expected {expected})"
        csv.rejects.append(Reject(name, int(csv.lines[i]), col, what))
    csv.bad |= unknown
    csv.field_bad[col] = csv.field_bad.get(col, np.zeros(len(unknown), bool)) | unknown


def _parsed(
    csv: CsvData,
    kind: str,
    cols: dict[str, pa.Array | np.ndarray],
    notes: list[str],
    names: dict[str, str] | None = None,
) -> Parsed:
    out = Parsed(
        kinds={kind: KindRows(cols, csv.lines, csv.bad, names or {}, csv.field_bad)},
        rejects=csv.rejects,
        rows_read=csv.rows + csv.skipped_rows,
        blank_lines=csv.blank_lines,
        ts=csv.ts,
        notes=notes,
    )
    # the parsers checked these columns hold one value each (errors name the file there)
    if "symbol" in csv.columns:
        out.symbol = check_one_symbol(csv.columns["symbol"], "")
    if "exchange" in csv.columns:
        out.venue = check_one_symbol(csv.columns["exchange"], "", "exchanges")
    return out


def _fast_parsed(
    fast: fastcsv.FastCsv,
    kind: str,
    cols: dict[str, pa.Array | np.ndarray],
    notes: list[str],
    names: dict[str, str],
    opts: Options,
    unit: str,
    checked: list[str],
) -> Parsed:
    """What ``_parsed`` returns for the same clean file read by the general path (the
    per-field masks of the columns it checks, all clear)."""
    n = fast.rows
    sym = fast.columns.get("symbol")
    return Parsed(
        symbol=sym.decode() if isinstance(sym, bytes | bytearray) and sym else None,
        kinds={
            kind: KindRows(
                cols,
                fast.lines,
                np.zeros(n, dtype=bool),
                names,
                {f: np.zeros(n, dtype=bool) for f in checked},
            )
        },
        rejects=[],
        rows_read=n,
        blank_lines=0,
        ts=tsmod.Detection(unit, "given" if opts.ts_unit else "format"),
        notes=notes,
    )


# ---- Bybit public trade archive ---------------------------------------------------------
BYBIT_SIDES: dict[str, int | None] = {"buy": 1, "sell": -1}


def parse_bybit(data: pa.Buffer, name: str, opts: Options) -> Parsed:
    """``public.bybit.com/trading/<SYM>/<SYM><date>.csv.gz``: timestamp in epoch seconds
    with a fraction (parsed exactly), ``side`` = taker side, ``trdMatchID`` = trade id,
    optional trailing ``RPI`` column (ignored). Old files are newest-first."""
    if opts.ts_unit in (None, "s"):
        fast = fastcsv.read(
            data,
            name,
            {
                "timestamp": "ts_s",
                "symbol": "same",
                "side": "side",
                "size": "f64",
                "price": "f64",
                "trdMatchID": "str",
            },
        )
        if fast is not None:
            c = fast.columns
            lines = fast.lines
            ts = c["timestamp"]
            ok = np.zeros(fast.rows, dtype=bool)
            seq, order = line_seq(lines, ts, ok)
            cols: dict[str, pa.Array | np.ndarray] = {
                "ts_ms": ts,
                "price": c["price"],
                "size": c["size"],
                "exchange_side": c["side"],
                "trade_id": c["trdMatchID"],
                "seq": seq,
            }
            return _fast_parsed(
                fast, "trades", cols, [f"order: {order}"], {}, opts, "s", ["timestamp", "side"]
            )
    usecols: dict[str, ColType] = {
        "timestamp": "ts",
        "symbol": "dict",
        "side": "dict",
        "size": "float",
        "price": "float",
        "trdMatchID": "str",
    }
    csv = read_csv(
        data,
        name,
        usecols,
        ts_col="timestamp",
        ts_unit=opts.ts_unit or "s",
        ts_how="given" if opts.ts_unit else "format",
    )
    check_one_symbol(csv.columns["symbol"], name)
    side, _nulls, unknown = map_values(csv.columns["side"], BYBIT_SIDES)
    _side_rejects(csv, name, "side", unknown, "Buy or Sell")
    ts = csv.columns["timestamp"].to_numpy(zero_copy_only=False)
    seq, order = line_seq(csv.lines, ts, csv.bad)
    cols = {
        "ts_ms": ts,
        "price": csv.columns["price"],
        "size": csv.columns["size"],
        "exchange_side": side,
        "trade_id": csv.columns["trdMatchID"],
        "seq": seq,
    }
    return _parsed(csv, "trades", cols, [f"order: {order}"])


# ---- Binance CSVs (parsed from the websocket captures) -----------------------------------
BOOL_MAKER: dict[str, int | None] = {"true": -1, "false": 1, "1": -1, "0": 1}


def parse_binance_trades(data: pa.Buffer, name: str, opts: Options) -> Parsed:
    """``local_ts,trade_time_ms,event_time_ms,symbol,trade_id,price,qty,is_buyer_maker,type``;
    time = ``trade_time_ms`` (T), seq = trade id, side from ``is_buyer_maker``."""
    if opts.ts_unit in (None, "ms"):
        fast = fastcsv.read(
            data,
            name,
            {
                "trade_time_ms": "ts_ms",
                "symbol": "same",
                "trade_id": "i64",
                "price": "f64",
                "qty": "f64",
                "is_buyer_maker": "maker",
            },
        )
        if fast is not None:
            c = fast.columns
            ids = pa.array(c["trade_id"], pa.int64())
            cols = {
                "ts_ms": c["trade_time_ms"],
                "price": c["price"],
                "size": c["qty"],
                "exchange_side": c["is_buyer_maker"],
                "trade_id": pc.cast(ids, pa.string()),
                "seq": c["trade_id"],
            }
            out = _fast_parsed(
                fast,
                "trades",
                cols,
                [],
                {"size": "qty"},
                opts,
                "ms",
                ["trade_time_ms", "is_buyer_maker"],
            )
            out.seq_is_trade_id = True
            return out
    usecols: dict[str, ColType] = {
        "trade_time_ms": "ts",
        "symbol": "dict",
        "trade_id": "int",
        "price": "float",
        "qty": "float",
        "is_buyer_maker": "dict",
    }
    csv = read_csv(
        data,
        name,
        usecols,
        ts_col="trade_time_ms",
        ts_unit=opts.ts_unit or "ms",
        ts_how="given" if opts.ts_unit else "format",
    )
    check_one_symbol(csv.columns["symbol"], name)
    side, _n, unknown = map_values(csv.columns["is_buyer_maker"], BOOL_MAKER)
    _side_rejects(csv, name, "is_buyer_maker", unknown, "True or False")
    ids = csv.columns["trade_id"]
    cols = {
        "ts_ms": csv.columns["trade_time_ms"],
        "price": csv.columns["price"],
        "size": csv.columns["qty"],
        "exchange_side": side,
        "trade_id": pc.cast(ids, pa.string()),
        "seq": ids,
    }
    out = _parsed(csv, "trades", cols, [], {"size": "qty"})
    out.seq_is_trade_id = True
    return out


def parse_binance_bookticker(data: pa.Buffer, name: str, opts: Options) -> Parsed:
    """``local_ts,transaction_time_ms,event_time_ms,symbol,update_id,bid_price,bid_qty,
    ask_price,ask_qty``; time = ``transaction_time_ms`` (T), seq = update id (u)."""
    names = {"bid_px": "bid_price", "bid_sz": "bid_qty", "ask_px": "ask_price", "ask_sz": "ask_qty"}
    if opts.ts_unit in (None, "ms"):
        fast = fastcsv.read(
            data,
            name,
            {
                "transaction_time_ms": "ts_ms",
                "symbol": "same",
                "update_id": "i64",
                "bid_price": "f64",
                "bid_qty": "f64",
                "ask_price": "f64",
                "ask_qty": "f64",
            },
        )
        if fast is not None:
            c = fast.columns
            qcols: dict[str, pa.Array | np.ndarray] = {
                "ts_ms": c["transaction_time_ms"],
                "bid_px": c["bid_price"],
                "bid_sz": c["bid_qty"],
                "ask_px": c["ask_price"],
                "ask_sz": c["ask_qty"],
                "seq": c["update_id"],
            }
            return _fast_parsed(
                fast, "quotes", qcols, [], names, opts, "ms", ["transaction_time_ms"]
            )
    usecols: dict[str, ColType] = {
        "transaction_time_ms": "ts",
        "symbol": "dict",
        "update_id": "int",
        "bid_price": "float",
        "bid_qty": "float",
        "ask_price": "float",
        "ask_qty": "float",
    }
    csv = read_csv(
        data,
        name,
        usecols,
        ts_col="transaction_time_ms",
        ts_unit=opts.ts_unit or "ms",
        ts_how="given" if opts.ts_unit else "format",
    )
    check_one_symbol(csv.columns["symbol"], name)
    cols = {
        "ts_ms": csv.columns["transaction_time_ms"],
        "bid_px": csv.columns["bid_price"],
        "bid_sz": csv.columns["bid_qty"],
        "ask_px": csv.columns["ask_price"],
        "ask_sz": csv.columns["ask_qty"],
        "seq": csv.columns["update_id"],
    }
    return _parsed(csv, "quotes", cols, [], names)


# ---- Binance raw websocket capture --------------------------------------------------------
_EVENT_RE = re.compile(r'"e"\s*:\s*"([A-Za-z_]+)"')


def parse_binance_ws(data: pa.Buffer, name: str, opts: Options) -> Parsed:
    """Lines ``<local receive time> <message JSON>`` of a combined-stream capture.

    ``trade`` messages become trades (T, t, p, q, m), ``bookTicker`` messages quotes (T, u,
    b, B, a, A); other streams (depth diffs, markPrice, REST snapshots) are counted and
    ignored. The receive time is never used as the time of the trade or quote.
    """
    text = data.to_pybytes().decode("utf-8", errors="replace")
    tr: dict[str, list] = {k: [] for k in ("line", "ts", "p", "q", "m", "t")}
    qt: dict[str, list] = {k: [] for k in ("line", "ts", "b", "B", "a", "A", "u")}
    rejects: list[Reject] = []
    ignored: Counter[str] = Counter()
    symbols: set[str] = set()
    blank = 0
    rows = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            blank += 1
            continue
        rows += 1
        _recv, sep, body = line.partition(" ")
        if not sep or not body.lstrip().startswith("{"):
            body = line if line.lstrip().startswith("{") else ""
            if not body:
                rejects.append(
                    Reject(name, lineno, "message", "not '<receive time> <JSON>'", line[:200])
                )
                continue
        # depth diffs are most of a capture's bytes: skip them without decoding the JSON
        head = _EVENT_RE.search(body, 0, 200)
        if head is not None and head.group(1) not in ("trade", "bookTicker"):
            ignored[head.group(1)] += 1
            continue
        try:
            msg = json.loads(body)
        except json.JSONDecodeError as exc:
            rejects.append(Reject(name, lineno, "message", f"invalid JSON ({exc.msg})", line[:200]))
            continue
        d = msg.get("data", msg) if isinstance(msg, dict) else None
        ev = d.get("e") if isinstance(d, dict) else None
        need: tuple[str, ...]
        keys: tuple[str, ...]
        if ev == "trade":
            need = ("T", "t", "p", "q", "m")
            target, keys = tr, ("ts", "t", "p", "q", "m")
        elif ev == "bookTicker":
            need = ("T", "u", "b", "B", "a", "A")
            target, keys = qt, ("ts", "u", "b", "B", "a", "A")
        else:
            ignored[
                str(ev or msg.get("stream", "other") if isinstance(msg, dict) else "other")
            ] += 1
            continue
        assert isinstance(d, dict)
        missing = [k for k in need if d.get(k) is None]
        if missing:
            rejects.append(Reject(name, lineno, missing[0], "missing field", line[:200]))
            continue
        target["line"].append(lineno)
        for k, src in zip(keys, need, strict=True):
            target[k].append(d[src])
        if isinstance(d.get("s"), str):
            symbols.add(d["s"])
    kinds: dict[str, KindRows] = {}
    if tr["line"]:
        kinds["trades"] = _ws_rows(name, tr, rejects, "trades")
    if qt["line"]:
        kinds["quotes"] = _ws_rows(name, qt, rejects, "quotes")
    notes = [f"ignored {n} {ev} messages" for ev, n in sorted(ignored.items())]
    if not kinds and not rejects:
        raise InputError(
            f"{name}: no trade or bookTicker messages found (is this a Binance capture?)"
        )
    if len(symbols) > 1:
        raise InputError(
            f"{name}: the capture holds {len(symbols)} symbols ({', '.join(sorted(symbols)[:5])}); "
            "the lake keeps one instrument: split the file by symbol first"
        )
    return Parsed(
        kinds,
        rejects,
        rows,
        blank,
        tsmod.Detection("ms", "format", "T (trade time) / T (bookTicker transaction time)"),
        notes,
        seq_is_trade_id=True,
        symbol=next(iter(symbols), None),
    )


def _num(
    name: str,
    lines: list[int],
    values: list,
    fld: str,
    rejects: list[Reject],
    bad: np.ndarray,
    kind: type = float,
) -> np.ndarray:
    out = np.zeros(len(values), dtype=np.float64 if kind is float else np.int64)
    for i, v in enumerate(values):
        try:
            if isinstance(v, bool):
                raise ValueError
            out[i] = kind(v)
        except (TypeError, ValueError, OverflowError):
            rejects.append(Reject(name, lines[i], fld, f"unparsable number {v!r}"))
            bad[i] = True
    return out


def _ws_rows(name: str, cols: dict[str, list], rejects: list[Reject], kind: str) -> KindRows:
    lines = np.array(cols["line"], dtype=np.int64)
    n = len(lines)
    bad = np.zeros(n, dtype=bool)
    ts = _num(name, cols["line"], cols["ts"], "T", rejects, bad, int)
    rng = ~bad & ~tsmod.in_range(ts)
    for i in np.flatnonzero(rng):
        rejects.append(
            Reject(name, int(lines[i]), "T", f"{tsmod.range_reason('ms')}: {cols['ts'][i]!r}")
        )
    bad |= rng
    if kind == "trades":
        tid = _num(name, cols["line"], cols["t"], "t", rejects, bad, int)
        side = np.zeros(n, dtype=np.int8)
        for j, m in enumerate(cols["m"]):
            if m is True:
                side[j] = -1
            elif m is False:
                side[j] = 1
            else:
                rejects.append(Reject(name, int(lines[j]), "m", f"expected true/false, got {m!r}"))
                bad[j] = True
        out: dict[str, pa.Array | np.ndarray] = {
            "ts_ms": ts,
            "price": _num(name, cols["line"], cols["p"], "p", rejects, bad),
            "size": _num(name, cols["line"], cols["q"], "q", rejects, bad),
            "exchange_side": side,
            "trade_id": pa.array([str(t) for t in tid], pa.string()),
            "seq": tid,
        }
        names = {"price": "p", "size": "q"}
    else:
        out = {
            "ts_ms": ts,
            "bid_px": _num(name, cols["line"], cols["b"], "b", rejects, bad),
            "bid_sz": _num(name, cols["line"], cols["B"], "B", rejects, bad),
            "ask_px": _num(name, cols["line"], cols["a"], "a", rejects, bad),
            "ask_sz": _num(name, cols["line"], cols["A"], "A", rejects, bad),
            "seq": _num(name, cols["line"], cols["u"], "u", rejects, bad, int),
        }
        names = {"bid_px": "b", "bid_sz": "B", "ask_px": "a", "ask_sz": "A"}
    return KindRows(out, lines, bad, names)


# ---- Tardis.dev CSVs ------------------------------------------------------------------------
TARDIS_SIDES: dict[str, int | None] = {"buy": 1, "sell": -1, "unknown": None}


def parse_tardis_trades(data: pa.Buffer, name: str, opts: Options) -> Parsed:
    """``exchange,symbol,timestamp,local_timestamp,id,side,price,amount``; ``timestamp`` is
    the exchange time in µs (``local_timestamp`` is Tardis' receive time), ``side`` the
    aggressor (``unknown`` allowed -> null), seq = numeric id, else line order."""
    usecols: dict[str, ColType] = {
        "exchange": "dict",
        "symbol": "dict",
        "timestamp": "ts",
        "id": "str",
        "side": "dict",
        "price": "float",
        "amount": "float",
    }
    csv = read_csv(
        data,
        name,
        usecols,
        ts_col="timestamp",
        ts_unit=opts.ts_unit or "us",
        ts_how="given" if opts.ts_unit else "format",
    )
    check_one_symbol(csv.columns["symbol"], name)
    check_one_symbol(csv.columns["exchange"], name, "exchanges")
    side, _n, unknown = map_values(csv.columns["side"], TARDIS_SIDES)
    _side_rejects(csv, name, "side", unknown, "buy, sell or unknown")
    ts = csv.columns["timestamp"].to_numpy(zero_copy_only=False)
    ids = csv.columns["id"]
    num_ids = all_int(ids)
    if num_ids is not None:
        seq, order = num_ids, "by trade id"
    else:
        seq, order = line_seq(csv.lines, ts, csv.bad)
    side_arr = pa.array(side, pa.int8(), mask=_n)
    cols = {
        "ts_ms": ts,
        "price": csv.columns["price"],
        "size": csv.columns["amount"],
        "exchange_side": side_arr,
        "trade_id": ids,
        "seq": seq,
    }
    out = _parsed(csv, "trades", cols, [f"order: {order}"], {"size": "amount"})
    out.seq_is_trade_id = num_ids is not None
    return out


def parse_tardis_quotes(data: pa.Buffer, name: str, opts: Options) -> Parsed:
    """Tardis ``quotes`` (``ask_amount,ask_price,bid_price,bid_amount``) or
    ``book_snapshot_N`` (level 0 of ``asks[i].price`` ...) as L1 quotes; µs exchange time."""
    header = read_header(data, name)
    if "is_snapshot" in header:
        raise InputError(
            f"{name}: this is a Tardis incremental_book_L2 file (order-book diffs), not L1 "
            "quotes; import its 'quotes' or 'book_snapshot_N' export instead"
        )
    if "asks[0].price" in header:
        px = {
            "ask_px": "asks[0].price",
            "ask_sz": "asks[0].amount",
            "bid_px": "bids[0].price",
            "bid_sz": "bids[0].amount",
        }
        note = "book snapshot: level 0 used as L1"
    else:
        px = {
            "ask_px": "ask_price",
            "ask_sz": "ask_amount",
            "bid_px": "bid_price",
            "bid_sz": "bid_amount",
        }
        note = "quotes"
    usecols: dict[str, ColType] = {"exchange": "dict", "symbol": "dict", "timestamp": "ts"}
    usecols.update(dict.fromkeys(px.values(), "float"))
    csv = read_csv(
        data,
        name,
        usecols,
        ts_col="timestamp",
        ts_unit=opts.ts_unit or "us",
        ts_how="given" if opts.ts_unit else "format",
    )
    check_one_symbol(csv.columns["symbol"], name)
    check_one_symbol(csv.columns["exchange"], name, "exchanges")
    ts = csv.columns["timestamp"].to_numpy(zero_copy_only=False)
    seq, order = line_seq(csv.lines, ts, csv.bad)
    cols: dict[str, pa.Array | np.ndarray] = {"ts_ms": ts, "seq": seq}
    cols.update({k: csv.columns[v] for k, v in px.items()})
    return _parsed(csv, "quotes", cols, [note, f"order: {order}"], px)


# ---- generic CSV with a column mapping --------------------------------------------------------
GENERIC_FIELDS = {
    "trades": {
        "ts": True,
        "price": True,
        "size": True,
        "side": False,
        "trade_id": False,
        "seq": False,
    },
    "quotes": {
        "ts": True,
        "bid_px": True,
        "bid_sz": True,
        "ask_px": True,
        "ask_sz": True,
        "seq": False,
    },
}
_ALIASES = {
    "ts": ("ts", "ts_ms", "timestamp", "time", "datetime", "date"),
    "price": ("price", "px"),
    "size": ("size", "qty", "quantity", "amount", "volume"),
    "side": ("side", "taker_side", "aggressor_side"),
    "trade_id": ("trade_id", "id", "tid"),
    "seq": ("seq", "sequence"),
    "bid_px": ("bid_px", "bid_price", "bid"),
    "bid_sz": ("bid_sz", "bid_qty", "bid_size", "bid_amount"),
    "ask_px": ("ask_px", "ask_price", "ask"),
    "ask_sz": ("ask_sz", "ask_qty", "ask_size", "ask_amount"),
}
GENERIC_SIDES: dict[str, int | None] = {
    "buy": 1,
    "b": 1,
    "1": 1,
    "+1": 1,
    "bid": 1,
    "sell": -1,
    "s": -1,
    "-1": -1,
    "ask": -1,
}


def resolve_mapping(
    header: list[str], kind: str, mapping: dict[str, str] | None, name: str
) -> dict[str, str]:
    """Field -> column. Explicit ``--map`` entries win; unmapped fields fall back to a
    column of the same (or a common alias) name."""
    fields = GENERIC_FIELDS[kind]
    mapping = dict(mapping or {})
    unknown = [k for k in mapping if k not in fields]
    if unknown:
        raise InputError(
            f"--map: unknown field(s) {', '.join(unknown)} for {kind}; known: {', '.join(fields)}"
        )
    lower = {h.lower(): h for h in header}
    out: dict[str, str] = {}
    for f, required in fields.items():
        if f in mapping:
            if mapping[f] not in header:
                raise InputError(
                    f"{name}:1:{mapping[f]}: --map {f}={mapping[f]} names no column; header has {', '.join(header)}"
                )
            out[f] = mapping[f]
            continue
        for alias in _ALIASES[f]:
            if alias in lower and lower[alias] not in out.values():
                out[f] = lower[alias]
                break
        else:
            if required:
                raise InputError(
                    f"{name}:1: no column for {f!r}; pass --map {f}=<column> (header has {', '.join(header)})"
                )
    return out


def parse_generic(data: pa.Buffer, name: str, opts: Options) -> Parsed:
    """A CSV with a header; columns chosen by ``--map``; timestamp unit auto-detected
    (epoch s/ms/µs/ns with optional fraction, or ISO 8601) unless ``--ts-unit`` is given."""
    kind = opts.kind or "trades"
    if kind not in GENERIC_FIELDS:
        raise InputError(f"--kind must be trades or quotes, not {kind!r}")
    header = read_header(data, name)
    m = resolve_mapping(header, kind, opts.mapping, name)
    types: dict[str, ColType] = {}
    for f, col in m.items():
        if f == "ts":
            types[col] = "ts"
        elif f in ("side",):
            types[col] = "dict"
        elif f == "trade_id":
            types[col] = "str"
        elif f == "seq":
            types[col] = "int"
        else:
            types[col] = "float"
    optional = frozenset(m[f] for f in ("side", "trade_id") if f in m)
    csv = read_csv(
        data,
        name,
        types,
        ts_col=m["ts"],
        ts_unit=opts.ts_unit,
        ts_how="given" if opts.ts_unit else "detected",
        optional=optional,
    )
    ts = csv.columns[m["ts"]].to_numpy(zero_copy_only=False)
    notes = [f"columns: {', '.join(f'{f}={c}' for f, c in m.items())}"]
    if "seq" in m:
        seq = csv.columns[m["seq"]].to_numpy(zero_copy_only=False)
        order = "by seq column"
    else:
        ids = all_int(csv.columns[m["trade_id"]]) if "trade_id" in m else None
        if ids is not None:
            seq, order = ids, "by trade id"
        else:
            seq, order = line_seq(csv.lines, ts, csv.bad)
    notes.append(f"order: {order}")
    cols: dict[str, pa.Array | np.ndarray] = {"ts_ms": ts, "seq": seq}
    if kind == "trades":
        cols["price"] = csv.columns[m["price"]]
        cols["size"] = csv.columns[m["size"]]
        if "side" in m:
            side, nulls, unknown = map_values(
                csv.columns[m["side"]], GENERIC_SIDES, allow_empty=True
            )
            _side_rejects(csv, name, m["side"], unknown, "buy/sell, b/s or 1/-1")
            cols["exchange_side"] = pa.array(side, pa.int8(), mask=nulls)
        if "trade_id" in m:
            cols["trade_id"] = csv.columns[m["trade_id"]]
    else:
        for f in ("bid_px", "bid_sz", "ask_px", "ask_sz"):
            cols[f] = csv.columns[m[f]]
    out = _parsed(csv, kind, cols, notes, {f: c for f, c in m.items() if f != "ts"})
    out.seq_is_trade_id = kind == "trades" and order == "by trade id"
    return out


# ---- Bybit ob500 order-book archive ---------------------------------------------------------
def parse_bybit_ob(data: pa.Buffer, name: str, opts: Options) -> Parsed:
    """Bybit ob500 JSON lines (snapshot + deltas) as L1 quotes, for an in-memory buffer.

    ``import_files`` never calls this for ``bybit-ob``: it streams the file instead
    (``at_core.ingest.orderbook``), because a day inflates to several GB. Anomalies (u gap,
    crossed book, delta before snapshot, bad line) are rejects of their line.
    """
    from at_core.ingest.orderbook import _core

    dec = _core().Ob500Decoder()
    dec.feed(data.to_pybytes())
    dec.finish()
    q = dec.take_quotes()
    rejects = [Reject(name, int(ln), f, d) for ln, _k, f, d in dec.take_anomalies()]
    st = dec.stats()
    lines = q.pop("line")
    bad = np.isin(lines, np.array(sorted({r.line for r in rejects}), dtype=np.int64))
    from at_core.ingest.orderbook import notes as ob_notes

    names = {
        "bid_px": "data.b",
        "bid_sz": "data.b",
        "ask_px": "data.a",
        "ask_sz": "data.a",
        "seq": "data.u",
    }
    return Parsed(
        kinds={"quotes": KindRows(dict(q), lines, bad, names)},
        rejects=rejects,
        rows_read=int(st["lines"]) - int(st["blank_lines"]),
        blank_lines=int(st["blank_lines"]),
        ts=tsmod.Detection("ms", "format", "cts (matching-engine time)"),
        notes=ob_notes(dict(st)),
    )


Parser = Callable[[pa.Buffer, str, Options], Parsed]
FORMATS: dict[str, Parser] = {
    "bybit": parse_bybit,
    "bybit-ob": parse_bybit_ob,
    "binance-ws": parse_binance_ws,
    "binance-trades": parse_binance_trades,
    "binance-bookticker": parse_binance_bookticker,
    "tardis-trades": parse_tardis_trades,
    "tardis-quotes": parse_tardis_quotes,
    "csv": parse_generic,
}
FORMAT_HELP = {
    "bybit": "Bybit public daily trade archive (timestamp,symbol,side,size,price,...,trdMatchID,...)",
    "bybit-ob": "Bybit ob500 order-book archive (JSON lines, .data or .data.zip) -> L1 quotes",
    "binance-ws": "raw Binance websocket capture lines '<recv time> <JSON>' (trade + bookTicker)",
    "binance-trades": "Binance trades CSV (trade_time_ms,...,trade_id,price,qty,is_buyer_maker)",
    "binance-bookticker": "Binance bookTicker CSV (transaction_time_ms,update_id,bid_price,...)",
    "tardis-trades": "Tardis.dev trades CSV (timestamp µs, id, side, price, amount)",
    "tardis-quotes": "Tardis.dev quotes or book_snapshot_N CSV (level 0 as L1)",
    "csv": "generic CSV with --map and timestamp auto-detection (--kind trades|quotes)",
}
