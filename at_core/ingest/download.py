"""Download Bybit's public history (daily trade and ob500 archives, funding rates).

``download_bybit`` fetches, per UTC day, the trade archive and the order-book archive,
checks both (gzip / zip CRC), and only then imports them (trades with the ``bybit`` format,
quotes with ``bybit-ob``, streamed in bounded memory). A day is all-or-nothing at the file
level: a corrupt or missing file is reported and nothing of it is imported.

Transfer robustness, because an ob500 day is hundreds of MB:

* resume: bytes go to ``<file>.part``; a later attempt (or run) asks for the rest with an
  HTTP ``Range`` header. A server that ignores it (200 instead of 206) restarts the file.
* retries with exponential backoff on connection errors, timeouts, truncated bodies,
  HTTP 429 and 5xx; a 404 is a day that does not exist and is never retried.
* size check against ``Content-Length`` / ``Content-Range``, then integrity: a gzip is
  inflated to its end (its CRC-32 and length trailer are checked), a zip must hold one
  member whose CRC-32 matches. A corrupt download is deleted, never imported.

Funding: ``GET /v5/market/funding/history`` (public, newest first, at most 200 rows per
call; pages are walked backwards with ``endTime``). The rates are stored in
``<db_dir>/lake/funding/<SYMBOL>.parquet`` (ts_ms = the funding instant, rate = the
fraction paid by longs to shorts at that instant), merged with what is already there and
written atomically. It sits in the lake, not in ``features.duckdb``, because it is market
history like the ticks (kept across feature rebuilds, readable without a DB lock).
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from at_core import logging as at_logging
from at_core.errors import AuctionTraderError, InputError, StorageError
from at_core.ingest import bybit_files
from at_core.storage.lake import Lake, day_start_ms

log = at_logging.get(__name__)

DAY_MS = 86_400_000
USER_AGENT = "auction-trader (history downloader)"


class DownloadError(AuctionTraderError):
    """A transfer that could not be completed (after retries) or a corrupt file."""


class DayMissing(DownloadError):
    """The archive has no file for this day (HTTP 404)."""


class _Retryable(Exception):
    pass


@dataclass
class Fetched:
    url: str
    path: Path
    status: str  # downloaded | resumed | cached
    bytes: int
    attempts: int
    seconds: float


def check_gzip(path: Path) -> None:
    """Inflate to the end: gzip verifies the CRC-32 and length trailer of every member."""
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(8 << 20):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise DownloadError(f"{path.name}: corrupt gzip file ({exc})") from exc


def check_zip(path: Path) -> None:
    """One member whose CRC-32 matches its inflated content."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = [i for i in zf.infolist() if not i.is_dir()]
            if len(members) != 1:
                raise DownloadError(f"{path.name}: zip should hold one file, holds {len(members)}")
            bad = zf.testzip()
            if bad is not None:
                raise DownloadError(f"{path.name}: corrupt zip member {bad} (CRC mismatch)")
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise DownloadError(f"{path.name}: corrupt zip file ({exc})") from exc


class Fetcher:
    """HTTP GET to a file with resume, retries and integrity checks."""

    def __init__(
        self,
        *,
        retries: int = 4,
        backoff_s: float = 1.0,
        timeout_s: float = 60.0,
        progress: bool | None = None,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.retries = retries
        self.backoff_s = backoff_s
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 15.0)),
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT},
        )
        self.sleep = sleep

    def close(self) -> None:
        self.client.close()

    def get_json(self, url: str, params: dict[str, Any]) -> Any:
        """GET a JSON document, retrying transport errors, 429 and 5xx."""
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                r = self.client.get(url, params=params)
            except httpx.TransportError as exc:
                last = exc
                continue
            if r.status_code == 429 or r.status_code >= 500:
                last = DownloadError(f"{url}: HTTP {r.status_code}")
                continue
            if r.status_code != 200:
                raise DownloadError(f"{url}: HTTP {r.status_code}: {r.text[:200]}")
            try:
                return r.json()
            except ValueError as exc:
                raise DownloadError(f"{url}: response is not JSON ({exc})") from exc
        raise DownloadError(f"{url}: failed after {self.retries + 1} attempt(s): {last}")

    def fetch(self, url: str, dest: Path, check: Callable[[Path], None]) -> Fetched:
        """Download ``url`` to ``dest`` (resuming ``dest.part``), then ``check`` it.

        Raises ``DayMissing`` on 404 and ``DownloadError`` when every attempt failed or the
        file is corrupt (the partial file is deleted in that case, so a rerun starts clean).
        """
        t0 = time.perf_counter()
        if dest.is_file():  # kept by an earlier --keep-files run
            try:
                check(dest)
                return Fetched(url, dest, "cached", dest.stat().st_size, 0, 0.0)
            except DownloadError as exc:
                log.warning(
                    "cached archive is corrupt; downloading again", path=str(dest), error=str(exc)
                )
                dest.unlink()
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        resumed = part.is_file() and part.stat().st_size > 0
        last: Exception | None = None
        restarted = False
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff_s * 2 ** (attempt - 1)
                log.info("download retry", url=url, attempt=attempt, wait_s=delay, error=str(last))
                self.sleep(delay)
            try:
                self._transfer(url, part)
            except _Retryable as exc:
                last = exc
                continue
            except httpx.TransportError as exc:  # connection refused/reset, timeout, truncated
                last = exc
                continue
            try:
                check(part)
            except DownloadError as exc:
                part.unlink(missing_ok=True)
                if resumed and not restarted:
                    # the bytes kept from an earlier run may not belong to the same file
                    restarted = True
                    last = exc
                    continue
                raise
            os.replace(part, dest)
            status = "resumed" if resumed else "downloaded"
            return Fetched(
                url, dest, status, dest.stat().st_size, attempt + 1, time.perf_counter() - t0
            )
        raise DownloadError(
            f"{url}: download failed after {self.retries + 1} attempt(s): {last} "
            f"(partial data kept in {part.name}; rerun to resume)"
        )

    def _transfer(self, url: str, part: Path) -> None:
        have = part.stat().st_size if part.is_file() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self.client.stream("GET", url, headers=headers) as r:
            if r.status_code == 404:
                raise DayMissing(f"{url}: not found (HTTP 404)")
            if r.status_code == 416 and have:
                # nothing past what we have: the part file is already complete
                return
            if r.status_code == 429 or r.status_code >= 500:
                raise _Retryable(f"HTTP {r.status_code}")
            if r.status_code not in (200, 206):
                raise DownloadError(f"{url}: HTTP {r.status_code}")
            if r.status_code == 206:
                start, total = _content_range(r.headers.get("Content-Range", ""))
                if start != have:
                    raise _Retryable(f"server resumed at byte {start}, expected {have}")
                mode = "ab"
            else:
                have, mode = 0, "wb"  # Range ignored: start over
                length = r.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
            done = have
            with (
                part.open(mode) as fh,
                tqdm(
                    total=total,
                    initial=have,
                    unit="B",
                    unit_scale=True,
                    desc=part.name.removesuffix(".part"),
                    disable=not self.progress,
                    file=sys.stderr,
                    leave=False,
                ) as bar,
            ):
                # raw bytes as sent: never let a Content-Encoding header inflate a .gz on the
                # way (the resume offset counts bytes on the wire), and write whatever arrived
                # before an interruption so the next attempt resumes after it
                for chunk in r.iter_raw():
                    fh.write(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
            if total is not None and done != total:
                raise _Retryable(f"transfer interrupted at byte {done} of {total}")


def _content_range(value: str) -> tuple[int, int | None]:
    """``bytes 100-999/1000`` -> (100, 1000)."""
    try:
        unit, _, rest = value.partition(" ")
        span, _, total = rest.partition("/")
        start = int(span.split("-")[0])
        if unit != "bytes":
            raise ValueError(unit)
        return start, (int(total) if total.isdigit() else None)
    except (ValueError, IndexError) as exc:
        raise _Retryable(f"unreadable Content-Range {value!r}") from exc


# ---- daily archives ---------------------------------------------------------------------------
@dataclass
class DayReport:
    day: dt.date
    status: str = "pending"  # imported | skipped | missing | failed
    files: list[Fetched] = field(default_factory=list)
    trades: int = 0
    quotes: int = 0
    message: str = ""
    seconds: float = 0.0

    def summary(self) -> str:
        got = ", ".join(
            f"{Path(f.path).name} {f.status} {f.bytes / 1e6:.1f} MB" for f in self.files
        )
        parts = [f"{self.day}: {self.status}"]
        if self.status == "imported":
            parts.append(f"trades {self.trades:,}, quotes {self.quotes:,}")
        if got:
            parts.append(got)
        if self.message:
            parts.append(self.message)
        parts.append(f"{self.seconds:.1f} s")
        return "; ".join(parts)


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    if last < first:
        raise InputError(f"--to {last} is before --from {first}")
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _day_imported(lake: Lake, path: Path, fmt: str, kind: str, day: dt.date) -> bool:
    """Was this day's file imported before, and are its rows still in the lake?"""
    for row in lake.imports():
        if row["format"] == fmt and Path(str(row["path"])).name == path.name:
            part = lake.day_dir(kind, day) / f"part-{row['source_id']}.parquet"  # type: ignore[arg-type]
            if part.is_file():
                return True
    return False


def download_bybit(
    db_dir: str | Path,
    symbol: str,
    first: dt.date,
    last: dt.date,
    *,
    archive_url: str,
    orderbook_url: str,
    orderbook: bool = True,
    force: bool = False,
    keep_files: bool = False,
    on_error: str = "stop",
    download_dir: str | Path | None = None,
    fetcher: Fetcher | None = None,
    echo: Callable[[str], None] | None = None,
) -> list[DayReport]:
    """Download and import ``first..last`` (inclusive UTC days); one report per day."""
    from at_core.ingest.importer import ImportStopped, import_files

    db = Path(db_dir)
    lake = Lake(db)
    dl = Path(download_dir) if download_dir else db / "downloads" / "bybit"
    own = fetcher is None
    f = fetcher or Fetcher()
    reports: list[DayReport] = []
    try:
        for day in days_between(first, last):
            t0 = time.perf_counter()
            rep = DayReport(day)
            reports.append(rep)
            jobs = [
                (archive_url, bybit_files.trade_path(symbol, day), "bybit", "trades", check_gzip)
            ]
            if orderbook:
                jobs.append(
                    (
                        orderbook_url,
                        bybit_files.ob_path(symbol, day),
                        "bybit-ob",
                        "quotes",
                        check_zip,
                    )
                )
            targets = [
                (base.rstrip("/") + rel, dl / rel.lstrip("/"), fmt, kind, chk)
                for base, rel, fmt, kind, chk in jobs
            ]
            if not force and all(
                _day_imported(lake, p, fmt, kind, day) for _u, p, fmt, kind, _c in targets
            ):
                rep.status = "skipped"
                rep.message = "already imported (use --force to download and import again)"
            else:
                try:
                    for url, path, _fmt, _kind, chk in targets:
                        rep.files.append(f.fetch(url, path, chk))
                except DayMissing as exc:
                    rep.status = "missing"
                    hint = (
                        " (--no-orderbook imports the trades alone)"
                        if "orderbook" in str(exc)
                        else ""
                    )
                    rep.message = (
                        f"{exc}: Bybit has not published this file (a future day, a day before the "
                        f"archive starts, or a wrong symbol {symbol!r}); nothing imported for this day{hint}"
                    )
                except DownloadError as exc:
                    rep.status = "failed"
                    rep.message = f"{exc}; nothing imported for this day"
                else:
                    try:
                        for _url, path, fmt, kind, _c in targets:
                            (ir,) = import_files(db, fmt, [path], on_error=on_error, force=force)
                            n = ir.imported.get(kind, 0)
                            if kind == "trades":
                                rep.trades = n
                            else:
                                rep.quotes = n
                        rep.status = "imported"
                    except ImportStopped as exc:
                        rep.status = "failed"
                        rep.message = str(exc)
                    if rep.status == "imported" and not keep_files:
                        for _url, path, *_ in targets:
                            path.unlink(missing_ok=True)
            rep.seconds = time.perf_counter() - t0
            if echo is not None:
                echo(rep.summary())
    finally:
        if own:
            f.close()
    return reports


# ---- funding history --------------------------------------------------------------------------
FUNDING_SCHEMA = pa.schema([("ts_ms", pa.int64()), ("rate", pa.float64()), ("symbol", pa.string())])
PAGE = 200


def funding_path(db_dir: str | Path, symbol: str = "BTCUSDT") -> Path:
    return Path(db_dir) / "lake" / "funding" / f"{symbol}.parquet"


def fetch_funding(
    rest_url: str, symbol: str, from_ms: int, to_ms: int, fetcher: Fetcher
) -> list[tuple[int, float]]:
    """Every funding (ts_ms, rate) with from_ms <= ts_ms < to_ms, walking pages backwards."""
    url = rest_url.rstrip("/") + "/v5/market/funding/history"
    out: dict[int, float] = {}
    end = to_ms - 1
    while end >= from_ms:
        params = {
            "category": "linear",
            "symbol": symbol,
            "startTime": from_ms,
            "endTime": end,
            "limit": PAGE,
        }
        body = fetcher.get_json(url, params)
        if not isinstance(body, dict) or body.get("retCode") != 0:
            code = body.get("retCode") if isinstance(body, dict) else None
            msg = body.get("retMsg") if isinstance(body, dict) else str(body)[:200]
            raise DownloadError(f"{url}: Bybit error retCode={code}: {msg}")
        rows = (body.get("result") or {}).get("list") or []
        if not rows:
            break
        oldest = end
        for i, row in enumerate(rows):
            try:
                ts = int(row["fundingRateTimestamp"])
                rate = float(row["fundingRate"])
                sym = row.get("symbol", symbol)
            except (KeyError, TypeError, ValueError) as exc:
                raise DownloadError(
                    f"{url}: result.list[{i}] unreadable ({exc!r}): {row!r}"
                ) from exc
            if sym != symbol:
                raise DownloadError(f"{url}: result.list[{i}] is for {sym}, asked {symbol}")
            if not np.isfinite(rate):
                raise DownloadError(f"{url}: result.list[{i}].fundingRate not finite: {row!r}")
            if from_ms <= ts < to_ms:
                out[ts] = rate
            oldest = min(oldest, ts)
        if len(rows) < PAGE or oldest <= from_ms:
            break
        if oldest > end:
            raise DownloadError(f"{url}: page ending at {end} returned only later rows; stopping")
        end = oldest - 1
    return sorted(out.items())


def store_funding(db_dir: str | Path, symbol: str, rows: list[tuple[int, float]]) -> int:
    """Merge rows into the symbol's funding file (new values replace old at the same
    instant), atomically. Returns the number of rows stored in total."""
    path = funding_path(db_dir, symbol)
    path.parent.mkdir(parents=True, exist_ok=True)
    merged: dict[int, float] = {}
    if path.is_file():
        old = pq.read_table(path)
        merged.update(zip(old["ts_ms"].to_pylist(), old["rate"].to_pylist(), strict=True))
    merged.update(rows)
    ts = np.array(sorted(merged), dtype=np.int64)
    table = pa.table(
        {
            "ts_ms": ts,
            "rate": np.array([merged[int(t)] for t in ts], dtype=np.float64),
            "symbol": pa.array([symbol] * len(ts), pa.string()),
        },
        schema=FUNDING_SCHEMA,
    )
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return table.num_rows


def download_funding(
    db_dir: str | Path,
    symbol: str,
    first: dt.date,
    last: dt.date,
    *,
    rest_url: str,
    fetcher: Fetcher | None = None,
) -> tuple[int, int]:
    """Fetch and store the funding history of ``first..last`` (inclusive days).
    Returns (rows fetched, rows stored in total)."""
    days_between(first, last)
    from_ms = day_start_ms(first)
    to_ms = day_start_ms(last) + DAY_MS
    own = fetcher is None
    f = fetcher or Fetcher()
    try:
        rows = fetch_funding(rest_url, symbol, from_ms, to_ms, f)
    finally:
        if own:
            f.close()
    total = store_funding(db_dir, symbol, rows)
    return len(rows), total


def funding_rates(
    db_dir: str | Path, from_ms: int, to_ms: int, symbol: str = "BTCUSDT"
) -> tuple[np.ndarray, np.ndarray]:
    """Stored funding instants and rates with ``from_ms <= ts_ms < to_ms``, sorted.

    ``rate`` is a fraction (0.0001 = 1 bp) paid by longs to shorts at ``ts_ms`` when
    positive. For the backtester's ``funding_source: history``. Raises ``StorageError``
    when nothing was downloaded for the symbol.
    """
    path = funding_path(db_dir, symbol)
    if not path.is_file():
        raise StorageError(
            f"no funding history for {symbol} in {path.parent} "
            "(run: auction-trader download bybit-funding --from DATE --to DATE)"
        )
    t = pq.read_table(path, columns=["ts_ms", "rate"])
    ts = t["ts_ms"]
    mask = pc.and_(pc.greater_equal(ts, from_ms), pc.less(ts, to_ms))
    t = t.filter(mask)
    return t["ts_ms"].to_numpy().astype(np.int64), t["rate"].to_numpy().astype(np.float64)


# ---- side check -----------------------------------------------------------------------------
@dataclass
class SideAgreement:
    """Quote-rule side vs Bybit's taker side over the trades of a range."""

    trades: int  # trades with an exchange side
    matched: int  # ... with a quote strictly before them
    decided: int  # ... at or outside the spread (the quote rule gives a side)
    agree: int

    @property
    def fraction(self) -> float | None:
        return self.agree / self.decided if self.decided else None

    def summary(self) -> str:
        if not self.decided:
            return f"side agreement: no trade could be signed from quotes ({self.trades} trades)"
        return (
            f"side agreement (quote rule vs Bybit taker side): {100.0 * self.agree / self.decided:.2f} % "
            f"of {self.decided:,} trades signed by quotes ({self.matched - self.decided:,} inside the "
            f"spread, {self.trades - self.matched:,} without an earlier quote)"
        )


def side_agreement(db_dir: str | Path, from_ms: int, to_ms: int) -> SideAgreement:
    """Sign each trade against the last quote *strictly before* it (a quote in the trade's
    own millisecond is usually the book the trade left behind): buy at or above the ask,
    sell at or below the bid; compare with the archive's taker side. A cheap sanity check
    of a downloaded day (the feature engine's inference adds the tick rule)."""
    import duckdb

    lake = Lake(db_dir)
    if not (lake.has_data("trades") and lake.has_data("quotes")):
        return SideAgreement(0, 0, 0, 0)
    q = f"""
        WITH t AS (SELECT ts_ms, seq, price, exchange_side FROM read_parquet('{lake.glob("trades")}')
                   WHERE ts_ms >= $lo AND ts_ms < $hi AND exchange_side IS NOT NULL),
             q AS (SELECT ts_ms, bid_px, ask_px FROM read_parquet('{lake.glob("quotes")}')
                   WHERE ts_ms >= $lo - {DAY_MS} AND ts_ms < $hi),
             j AS (SELECT t.exchange_side AS side, q.ts_ms AS qts,
                          CASE WHEN t.price >= q.ask_px THEN 1 WHEN t.price <= q.bid_px THEN -1
                               ELSE 0 END AS inferred
                   FROM t ASOF LEFT JOIN q ON t.ts_ms > q.ts_ms)
        SELECT count(*), count(qts), count(*) FILTER (WHERE qts IS NOT NULL AND inferred != 0),
               count(*) FILTER (WHERE qts IS NOT NULL AND inferred = side)
        FROM j"""
    with duckdb.connect() as con:
        row = con.execute(q, {"lo": from_ms, "hi": to_ms}).fetchall()[0]
    return SideAgreement(*(int(v) for v in row))
