"""Test support: a loopback HTTP server with Bybit's archive layout, fixture builders in
the exact archive formats, and an independent brute-force order-book rebuild (the oracle
the Rust decoder is checked against)."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from at_core.ingest import bybit_files as bf

DAY_MS = 86_400_000


def day_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)


# ---- oracle ----------------------------------------------------------------------------------
def brute_force_l1(lines: list[str]) -> list[tuple[int, int, float, float, float, float, int]]:
    """Rebuild the book from scratch with json + dicts; one row (line, cts, bid, bid size,
    ask, ask size, u) per message whose top of book differs from the previous row's."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    out = []
    last = None
    have_book = False
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        m = json.loads(line)
        d = m["data"]
        if m["type"] == "snapshot" or d["u"] == 1:
            bids.clear()
            asks.clear()
            have_book = True
        elif not have_book:
            continue
        for book, key in ((bids, "b"), (asks, "a")):
            for p, s in d.get(key, []):
                if float(s) == 0.0:
                    book.pop(float(p), None)
                else:
                    book[float(p)] = float(s)
        if not bids or not asks:
            last = None
            continue
        bp = max(bids)
        ap = min(asks)
        top = (bp, bids[bp], ap, asks[ap])
        if top != last:
            last = top
            out.append((lineno, int(m.get("cts", m["ts"])), *top, int(d["u"])))
    return out


# ---- fixture builders ------------------------------------------------------------------------
@dataclass
class Day:
    day: dt.date
    trades_gz: bytes
    ob_zip: bytes
    ob_lines: list[str]
    trades: list[bf.ArchiveTrade] = field(default_factory=list)
    sides: list[int] = field(default_factory=list)


def make_day(
    day: dt.date,
    *,
    messages: int = 1200,
    trades: int = 150,
    rpi: bool = True,
    newest_first: bool = False,
    seed: int = 3,
    symbol: str = "BTCUSDT",
) -> Day:
    """A consistent day: an ob500 stream (100 ms deltas, 60-level snapshot) and taker
    trades printed against it (buys at the ask, sells at the bid of the book standing
    40-60 ms earlier, so the quote rule can sign every one of them)."""
    start = day_ms(day)
    lines = list(
        bf.synthetic_ob_lines(messages, start_ms=start, seed=seed, depth=60, snapshot_every=10**9)
    )
    l1 = brute_force_l1(lines)
    rng = np.random.default_rng(seed + 100)
    picks = np.sort(
        rng.choice(np.arange(len(l1) - 1), size=min(trades, len(l1) - 1), replace=False)
    )
    rows: list[bf.ArchiveTrade] = []
    sides: list[int] = []
    for k, i in enumerate(picks):
        _line, cts, bp, _bs, ap, _as, _u = l1[int(i)]
        nxt = l1[int(i) + 1][1]
        t_ms = cts + 1 + int(rng.integers(0, max(1, min(60, nxt - cts - 1))))
        frac = int(rng.integers(0, 10))  # sub-ms digit: the archive's 4-decimal seconds
        side = 1 if rng.random() < 0.5 else -1
        px = ap if side == 1 else bp
        ts_text = f"{t_ms // 1000}.{t_ms % 1000:03d}{frac}"
        rows.append(
            bf.ArchiveTrade(
                ts_text=ts_text,
                side="Buy" if side == 1 else "Sell",
                size=f"{int(rng.integers(1, 900)) / 1000:.3f}",
                price=f"{px:.1f}",
                trade_id=f"a1f0c6f3-1b0c-5a52-9e1e-{day.strftime('%m%d')}{k:08d}",
            )
        )
        sides.append(side)
    csv = bf.trade_csv_text(rows, symbol, rpi=rpi, newest_first=newest_first)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(bf.ob_member_name(symbol, day), "\n".join(lines) + "\n")
    return Day(day, gzip.compress(csv.encode()), buf.getvalue(), lines, rows, sides)


def zip_lines(lines: list[str], member: str = "x_ob500.data") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, "\n".join(lines) + "\n")
    return buf.getvalue()


def funding_rows(first: dt.date, count: int, symbol: str = "BTCUSDT") -> list[dict[str, str]]:
    """``count`` funding records every 8 h from ``first`` 00:00 UTC (v5 field names)."""
    start = day_ms(first)
    return [
        {
            "symbol": symbol,
            "fundingRate": f"{(0.0001 + 0.00001 * ((i % 7) - 3)):.6f}",
            "fundingRateTimestamp": str(start + i * 8 * 3_600_000),
        }
        for i in range(count)
    ]


# ---- server ------------------------------------------------------------------------------------
class ArchiveServer:
    """Serves ``files`` (URL path -> bytes) with HTTP Range support, 404 for anything else,
    and the v5 funding-history endpoint over ``funding``. ``cut[path] = n`` makes the next
    response for ``path`` stop after ``n`` body bytes and drop the connection (once)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: dict[str, int] = {}
        self.funding: list[dict[str, str]] = []
        self.requests: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                rng = self.headers.get("Range")
                with server.lock:
                    server.requests.append((url.path, rng))
                if url.path == "/v5/market/funding/history":
                    return self._funding(parse_qs(url.query))
                data = server.files.get(url.path)
                if data is None:
                    return self._send(404, b"<html>404 Not Found</html>", "text/html")
                start = 0
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                body = data[start:]
                self.send_response(206 if start else 200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                with server.lock:
                    cut = server.cut.pop(url.path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def _funding(self, q: dict[str, list[str]]) -> None:
                lo = int(q.get("startTime", ["0"])[0])
                hi = int(q.get("endTime", [str(2**62)])[0])
                limit = int(q.get("limit", ["200"])[0])
                sym = q.get("symbol", [""])[0]
                rows = [
                    r
                    for r in server.funding
                    if r["symbol"] == sym and lo <= int(r["fundingRateTimestamp"]) <= hi
                ]
                rows.sort(key=lambda r: -int(r["fundingRateTimestamp"]))  # newest first
                body = {
                    "retCode": 0,
                    "retMsg": "OK",
                    "result": {"category": "linear", "list": rows[:limit]},
                    "retExtInfo": {},
                    "time": 1_700_000_000_000,
                }
                self._send(200, json.dumps(body).encode(), "application/json")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ArchiveServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add_day(self, d: Day, symbol: str = "BTCUSDT") -> None:
        self.files[bf.trade_path(symbol, d.day)] = d.trades_gz
        self.files[bf.ob_path(symbol, d.day)] = d.ob_zip
