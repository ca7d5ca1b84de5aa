"""``bybit-ob``: Bybit ob500 order-book archives to L1 quotes, streamed in bounded memory.

An ob500 day is hundreds of MB zipped and several GB of JSON once inflated, so unlike the
other formats it is never loaded whole: the zip member is inflated chunk by chunk and fed
to the Rust decoder (``at_core._core.Ob500Decoder``), which maintains the full book and
emits one L1 quote per top-of-book change (time = ``cts``, the matching-engine time;
``seq`` = the update id ``u``). Only the quotes (about 60 bytes each) are kept in memory.

Anomalies are reported as rejects at ``file:line`` like any bad row, and the quote that
line produced (if any) is not stored:

* ``u`` gap: deltas carry absolute level sizes, so a lost update leaves only the levels it
  touched stale; the book heals as they change again. Reported, decoding goes on.
* crossed or locked top (bid >= ask): a stale level; the quote is not a real market.
* a delta before any snapshot, an unreadable line, a message for another symbol.

In ``stop`` mode (the default) any of these stops the file and nothing is written; with
``--on-error skip`` the other quotes are stored and the rejects written to a CSV.

Source id: the content hash used for other files would need an extra full inflate pass.
A zip member already records the CRC-32 and size of its inflated content, so the id here
is a SHA-256 of (CRC-32, size, first 64 KiB of the content): the same content gets the
same id whether it arrives zipped or as the plain ``.data`` file (whose CRC is computed in
one streaming pass), and re-importing never duplicates quotes.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import queue
import re
import struct
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pyarrow as pa

from at_core.errors import InputError
from at_core.ingest import timestamps as tsmod
from at_core.ingest.csvread import Reject
from at_core.storage.lake import Lake

CHUNK = 4 << 20
HEAD = 64 << 10


def _core() -> Any:
    from at_core import _core

    if not hasattr(_core, "Ob500Decoder"):
        raise InputError(
            "the compiled core has no Ob500Decoder: rebuild it (maturin develop --release)"
        )
    return _core


@contextmanager
def open_stream(path: Path) -> Iterator[tuple[IO[bytes], int, int | None, int | None]]:
    """Open the decompressed content; yields (stream, compressed size, CRC-32, size) where
    the CRC and size are known without reading (zip central directory) or None."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    size = path.stat().st_size
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic == b"PK\x03\x04":
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise InputError(f"{path}: corrupt zip file ({exc})") from exc
        with zf:
            members = [i for i in zf.infolist() if not i.is_dir()]
            if len(members) != 1:
                names = ", ".join(i.filename for i in members[:5])
                raise InputError(
                    f"{path}: zip must hold exactly one file, holds {len(members)} ({names})"
                )
            info = members[0]
            with zf.open(info) as stream:
                yield stream, size, info.CRC, info.file_size
        return
    if magic[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as gz:
            yield cast(IO[bytes], gz), size, None, None
        return
    with path.open("rb") as stream:
        yield stream, size, None, None


def _chunks(stream: IO[bytes], path: Path) -> Iterator[bytes]:
    try:
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                return
            yield chunk
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        # zipfile checks the CRC at the end of the member: a damaged archive fails here
        raise InputError(f"{path}: corrupt archive ({exc})") from exc


def _prefetch(chunks: Iterator[bytes], depth: int = 3) -> Iterator[bytes]:
    """Inflate the next chunks in a thread while the current one is decoded (zlib and
    the Rust decoder both release the GIL, so the two overlap on two cores). At most
    ``depth`` chunks wait in the queue: memory stays bounded."""
    q: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for c in chunks:
                while not stop.is_set():
                    try:
                        q.put(c, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(None)
        except BaseException as exc:  # handed to the consumer, re-raised there
            q.put(exc)

    t = threading.Thread(target=produce, name="ob500-inflate", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join()


def source_id(path: Path) -> str:
    """Content id without inflating a zip (see the module docstring)."""
    with open_stream(path) as (stream, _size, crc, length):
        head = stream.read(HEAD)
        if crc is None or length is None:
            c, n = zlib.crc32(head), len(head)
            for chunk in _chunks(stream, path):
                c = zlib.crc32(chunk, c)
                n += len(chunk)
            crc, length = c, n
    h = hashlib.sha256(b"bybit-ob\0" + struct.pack("<IQ", crc & 0xFFFFFFFF, length) + head)
    return h.hexdigest()[:32]


class Decoded:
    """Everything one pass over an ob500 file produced."""

    def __init__(self) -> None:
        self.quotes: dict[str, list[np.ndarray]] = {}
        self.rejects: list[Reject] = []
        self.stats: dict[str, int] = {}

    def column(self, name: str, dtype: Any) -> np.ndarray:
        parts = self.quotes.get(name, [])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def decode(path: Path, progress: Callable[[int], None] | None = None) -> Decoded:
    """Stream the file through the decoder; ``progress(bytes_inflated)`` per chunk."""
    core = _core()
    dec = core.Ob500Decoder()
    out = Decoded()
    name = str(path)

    def drain() -> None:
        q = dec.take_quotes()
        for k, v in q.items():
            out.quotes.setdefault(k, []).append(v)
        for line, _kind, field, detail in dec.take_anomalies():
            out.rejects.append(Reject(name, int(line), field, detail))

    with open_stream(path) as (stream, _size, _crc, _len):
        for chunk in _prefetch(_chunks(stream, path)):
            dec.feed(chunk)
            drain()
            if progress is not None:
                progress(len(chunk))
    dec.finish()
    drain()
    out.stats = dict(dec.stats())
    return out


def quotes_table(d: Decoded) -> tuple[pa.Table, np.ndarray]:
    """Lake quotes table and the source line of each row."""
    cols = {
        "ts_ms": d.column("ts_ms", np.int64),
        "bid_px": d.column("bid_px", np.float64),
        "bid_sz": d.column("bid_sz", np.float64),
        "ask_px": d.column("ask_px", np.float64),
        "ask_sz": d.column("ask_sz", np.float64),
        "seq": d.column("seq", np.int64),
    }
    return pa.table(cols), d.column("line", np.int64)


def notes(stats: dict[str, int]) -> list[str]:
    out = [
        f"book messages {stats.get('messages', 0):,} (snapshots {stats.get('snapshots', 0)}, "
        f"resets {stats.get('resets', 0)}, max depth {stats.get('max_depth', 0)})"
    ]
    if stats.get("one_sided"):
        out.append(f"{stats['one_sided']} message(s) left one side empty (no L1 quote)")
    if stats.get("delete_absent"):
        out.append(f"{stats['delete_absent']} delete(s) of absent levels ignored")
    if stats.get("ts_fallback"):
        out.append(f"{stats['ts_fallback']} message(s) without cts: stamped with ts")
    return out


def import_ob_file(
    lake: Lake,
    path: Path,
    *,
    on_error: str = "stop",
    rejects_path: Path | None = None,
    rejects_append: bool = False,
    force: bool = False,
    progress: Callable[[float], None] | None = None,
    opts: Any = None,
) -> Any:
    """Import one ob500 archive as quotes (same contract as ``importer.import_file``;
    ``opts``: the importer's ``Options``, for the instrument checks)."""
    from at_core.ingest import admission
    from at_core.ingest.importer import (
        ImportReport,
        ImportStopped,
        default_rejects_path,
        format_errors,
        write_rejects,
    )

    t0 = time.perf_counter()
    step = progress or (lambda _f: None)
    sid = source_id(path)
    report = ImportReport(path=str(path), fmt="bybit-ob", source_id=sid)
    prior = lake.imported(sid)
    if prior is not None and not force:
        report.status = "skipped"
        report.seconds = time.perf_counter() - t0
        step(1.0)
        return report
    t1 = time.perf_counter()
    report.timings["id"] = t1 - t0
    on_disk = max(1, path.stat().st_size)
    seen = [0]

    def advance(n: int) -> None:
        # inflated bytes outrun the file size ~10x: show a rough fraction, capped below 1
        seen[0] += n
        step(min(0.9, 0.9 * seen[0] / (on_disk * 10)))

    d = decode(path, advance)
    t2 = time.perf_counter()
    report.timings["decode"] = t2 - t1
    table, lines = quotes_table(d)
    report.rows_read = int(d.stats.get("lines", 0)) - int(d.stats.get("blank_lines", 0))
    report.blank_lines = int(d.stats.get("blank_lines", 0))
    report.notes = notes(d.stats)
    report.ts_unit = "ms (cts, matching-engine time)"
    from at_core.ingest.formats import KindRows
    from at_core.ingest.validate import validate

    bad_lines = np.array(sorted({r.line for r in d.rejects}), dtype=np.int64)
    anomalous = np.isin(lines, bad_lines)
    ts = table["ts_ms"].to_numpy()
    out_of_range = ~tsmod.in_range(ts) & ~anomalous
    for i in np.flatnonzero(out_of_range):
        d.rejects.append(
            Reject(str(path), int(lines[i]), "cts", f"{tsmod.range_reason('ms')}: {int(ts[i])}")
        )
    anomalous |= out_of_range
    rows = KindRows(
        columns={c: table[c].combine_chunks() for c in table.column_names},
        lines=lines,
        bad=anomalous,
        names={
            "bid_px": "data.b",
            "bid_sz": "data.b",
            "ask_px": "data.a",
            "ask_sz": "data.a",
            "seq": "data.u",
        },
    )
    # the archive is named <date>_<SYMBOL>_ob500.data(.zip)
    m = re.search(r"_([A-Za-z0-9]+)_ob\d+", path.name)
    inst = admission.Instrument("bybit", m.group(1) if m else None)
    if opts is not None and opts.instrument is not None:
        admission.check_instrument(lake, str(path), inst, opts.instrument)
    good, rej, _bad = validate(
        "quotes", rows, str(path), opts.tick_size if opts is not None else None
    )
    rejects = d.rejects + rej
    report.rejected_rows = len({r.line for r in rejects})
    if rejects:
        report.rejects = rejects
        if on_error == "stop":
            report.status = "failed"
            report.seconds = time.perf_counter() - t0
            raise ImportStopped(report, format_errors(str(path), rejects, report.rejected_rows))
        dest = rejects_path or default_rejects_path(lake.db_dir, path)
        write_rejects(dest, rejects, append=rejects_append)
        report.rejects_path = str(dest)
    ranges = admission.stream_ranges({"quotes": good})
    conflicts = admission.overlaps(lake, ranges, exclude=sid)
    if conflicts and not force:
        admission.refuse_overlaps(str(path), conflicts, ranges)
    st = lake.stage("quotes", good, sid, frozenset(s.source_id for _, s in conflicts))
    wr = st.commit(sid)
    report.imported["quotes"] = wr.rows
    report.days = sorted(wr.rows_by_day)
    if prior is not None:
        keep: set[dt.date] = set(wr.rows_by_day)
        for day in lake.days("quotes"):
            if day not in keep:
                (lake.day_dir("quotes", day) / f"part-{sid}.parquet").unlink(missing_ok=True)
    report.timings["lake write"] = time.perf_counter() - t2
    lake.sources.record(
        sid,
        str(path),
        "bybit-ob",
        0,
        wr.rows,
        report.rejected_rows,
        venue=inst.venue,
        symbol=inst.symbol,
        ranges=ranges,
    )
    report.notes.extend(admission.replace(lake, conflicts))
    step(1.0)
    report.seconds = time.perf_counter() - t0
    return report
