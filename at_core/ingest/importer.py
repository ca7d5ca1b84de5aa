"""``import_files``: parse, validate and store tick files into the lake, file by file.

Guarantees (DEVELOPERS.md):

* Nothing half-written: a file is parsed and validated completely before its first lake
  part is written, parts are written under temporary names and renamed into place only
  after all of them (every kind, every day) were written and the file is known not to be
  imported yet. In ``stop`` mode a file with any bad row writes nothing.
* No duplicates: the lake source id is the SHA-256 of the file's *decompressed* content,
  so re-importing a file (or its ``.gz`` / ``.zip`` twin) replaces its own parts; an
  already imported file is skipped unless ``force``. Trades carrying an exchange trade id
  are also de-duplicated against other sources of the same day by the lake.
* No silent drops: every rejected row is reported (file:line:field: reason), blank lines
  and ignored message types are counted in the summary.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import sys
import threading
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from at_core.config import Settings, load_settings
from at_core.errors import InputError
from at_core.ingest import admission
from at_core.ingest.csvread import Reject
from at_core.ingest.formats import FORMATS, Options, Parsed
from at_core.ingest.validate import validate
from at_core.storage.lake import KINDS, Lake, StagedWrite, day_of_ms
from at_core.storage.tmpfiles import sweep

MAX_LISTED = 20
# formats imported by streaming (at_core/ingest/orderbook.py), never read into memory whole
STREAMED_FORMATS = frozenset({"bybit-ob"})


@dataclass
class ImportReport:
    """What one input file contributed (printed as the import summary)."""

    path: str
    fmt: str
    source_id: str
    status: str = "imported"  # imported | skipped (already imported) | empty | failed
    rows_read: int = 0
    imported: dict[str, int] = field(default_factory=dict)
    rejected_rows: int = 0
    rejects: list[Reject] = field(default_factory=list)
    rejects_path: str | None = None
    duplicates_dropped: int = 0
    days: list[dt.date] = field(default_factory=list)
    ts_unit: str | None = None
    blank_lines: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds

    def summary(self) -> str:
        name = Path(self.path).name
        if self.status == "skipped":
            return f"{name}: already imported (source {self.source_id[:12]}); skipped (use --force to re-import)"
        parts = [f"{name}: {self.status}", f"rows read {self.rows_read:,}"]
        for kind in KINDS:
            if kind in self.imported:
                parts.append(f"{kind} {self.imported[kind]:,}")
        parts.append(f"rejected {self.rejected_rows:,}")
        parts.append(f"duplicates dropped {self.duplicates_dropped:,}")
        if self.days:
            d0, d1 = self.days[0], self.days[-1]
            parts.append(f"days {len(self.days)} ({d0}..{d1})" if d0 != d1 else f"day {d0}")
        if self.ts_unit:
            parts.append(f"timestamps: {self.ts_unit}")
        if self.blank_lines:
            parts.append(f"blank lines skipped {self.blank_lines}")
        parts.extend(self.notes)
        if self.rejects_path:
            parts.append(f"rejects -> {self.rejects_path}")
        parts.append(f"{self.seconds:.2f} s")
        return "; ".join(parts)


def read_source(path: Path) -> pa.Buffer:
    """The file's bytes, decompressed when it is ``.gz`` or a ``.zip`` of one member.

    A plain file is memory-mapped (no copy): parsing and hashing read the page cache.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic[:2] != b"\x1f\x8b" and magic != b"PK\x03\x04":
        if path.stat().st_size == 0:
            return pa.py_buffer(b"")
        return pa.memory_map(str(path)).read_buffer()
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return pa.py_buffer(gzip.decompress(raw))
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{path}: corrupt gzip file ({exc})") from exc
    if raw[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as zf:
                members = [i for i in zf.infolist() if not i.is_dir()]
                if len(members) != 1:
                    names = ", ".join(i.filename for i in members[:5])
                    raise InputError(
                        f"{path}: zip must hold exactly one file, holds {len(members)} ({names})"
                    )
                return pa.py_buffer(zf.read(members[0]))
        except zipfile.BadZipFile as exc:
            raise InputError(f"{path}: corrupt zip file ({exc})") from exc
    return pa.py_buffer(raw)


def check_line_ends(data: pa.Buffer, name: str, chunk: int = 64 << 20) -> None:
    """Refuse a carriage return that does not end a line (``\r`` not followed by
    ``\n``): CSV readers split the row there, and every later reject would name the wrong
    line. Windows line ends (``\r\n``) are fine. Scanned in chunks with NumPy (memchr
    speed, no copy of the file)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    n = len(arr)
    newlines = 0
    for a in range(0, n, chunk):
        part = arr[a : a + chunk]
        cr = np.flatnonzero(part == 13)
        if len(cr):
            nxt = cr + 1
            follow = np.where(
                nxt < len(part),
                part[np.minimum(nxt, len(part) - 1)],
                arr[a + len(part)] if a + len(part) < n else 10,
            )
            bare = cr[follow != 10]
            if len(bare):
                k = int(bare[0])
                line = newlines + int(np.count_nonzero(part[:k] == 10)) + 1
                raise InputError(
                    f"{name}:{line}: a carriage return inside a line (byte {a + k}): CSV readers "
                    "would split the row there and every later line number would shift; fix the "
                    "file (e.g. `tr -d '\\r'`)"
                )
        newlines += int(np.count_nonzero(part == 10))


def content_id(data: pa.Buffer) -> str:
    """SHA-256 of the (decompressed) content: the same data gets the same lake source id."""
    return hashlib.sha256(memoryview(data)).hexdigest()[:32]


# files at least this big are hashed on a second thread while they are parsed
OVERLAP_HASH_BYTES = 16 << 20


class _Hasher:
    """``content_id(data)`` on a background thread (hashlib releases the GIL)."""

    def __init__(self, data: pa.Buffer) -> None:
        self._data = data
        self._out: list[str] = []
        self._err: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="import-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._out.append(content_id(self._data))
        except BaseException as exc:  # re-raised in the caller's thread
            self._err.append(exc)

    def result(self) -> str:
        self._thread.join()
        if self._err:
            raise self._err[0]
        return self._out[0]


def parse_mapping(text: str | None) -> dict[str, str] | None:
    """``ts=time,price=px`` -> {"ts": "time", "price": "px"}."""
    if not text:
        return None
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, col = item.partition("=")
        if not sep or not key.strip() or not col.strip():
            raise InputError(f"--map: expected FIELD=COLUMN, got {item!r}")
        out[key.strip()] = col.strip()
    return out


def default_rejects_path(db_dir: Path, path: Path) -> Path:
    return db_dir / "rejects" / f"{path.name}.rejects.csv"


def write_rejects(dest: Path, rejects: list[Reject], append: bool = False) -> None:
    """Write rejects as CSV (file,line,field,reason,raw); the raw line when known."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    new = not append or not dest.exists()
    with dest.open("a" if append else "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(["file", "line", "field", "reason", "raw"])
        for r in sorted(rejects, key=lambda r: (r.line, r.field)):
            w.writerow([r.file, r.line, r.field, r.reason, r.raw if r.raw is not None else ""])


def _attach_raw(data: pa.Buffer, rejects: list[Reject]) -> None:
    """Fill in the raw text of rejected lines (only done when there are rejects)."""
    missing = sorted({r.line for r in rejects if r.raw is None})
    if not missing:
        return
    nl = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    starts = np.concatenate([[0], nl + 1])
    texts: dict[int, str] = {}
    for line in missing:
        if line - 1 < len(starts):
            a = int(starts[line - 1])
            b = int(nl[line - 1]) if line - 1 < len(nl) else len(data)
            texts[line] = (
                data[a:b].to_pybytes().decode("utf-8", errors="replace").rstrip("\r")[:500]
            )
    for r in rejects:
        if r.raw is None:
            r.raw = texts.get(r.line)


def format_errors(name: str, rejects: list[Reject], rows: int) -> str:
    lines = sorted(rejects, key=lambda r: (r.line, r.field))
    listed = "\n".join(f"  {r}" for r in lines[:MAX_LISTED])
    more = f"\n  ... and {len(lines) - MAX_LISTED} more" if len(lines) > MAX_LISTED else ""
    return (
        f"{name}: {rows} bad row(s) ({len(rejects)} error(s)); nothing imported from this file "
        f"(use --on-error skip to import the good rows and write the rejects to a file):\n"
        f"{listed}{more}"
    )


def import_file(
    lake: Lake,
    fmt: str,
    path: Path,
    *,
    opts: Options,
    on_error: str = "stop",
    rejects_path: Path | None = None,
    rejects_append: bool = False,
    force: bool = False,
    progress: Callable[[float], None] | None = None,
) -> ImportReport:
    """Import one file; ``progress(fraction)`` is called as stages complete."""
    if fmt in STREAMED_FORMATS:  # too big to hold in memory: decoded chunk by chunk
        from at_core.ingest.orderbook import import_ob_file

        rep: ImportReport = import_ob_file(
            lake,
            path,
            on_error=on_error,
            rejects_path=rejects_path,
            rejects_append=rejects_append,
            force=force,
            progress=progress,
            opts=opts,
        )
        return rep
    t0 = time.perf_counter()
    parser = FORMATS[fmt]
    data = read_source(path)
    check_line_ends(data, str(path))
    step = progress or (lambda _f: None)
    t_read = time.perf_counter()
    report = ImportReport(path=str(path), fmt=fmt, source_id="")
    hasher: _Hasher | None = None
    prior: dict[str, object] | None = None
    hash_wait = 0.0

    def resolve() -> bool:
        """Wait for the content hash; True when the file is to be skipped."""
        nonlocal hasher, prior, hash_wait
        if hasher is not None:
            t = time.perf_counter()
            report.source_id = hasher.result()
            hash_wait += time.perf_counter() - t
            hasher = None
            prior = lake.imported(report.source_id)
        return prior is not None and not force

    def skipped() -> ImportReport:
        rep = ImportReport(path=str(path), fmt=fmt, source_id=report.source_id, status="skipped")
        rep.timings = {"read+hash": (t_read - t0) + hash_wait, **report.timings}
        rep.seconds = time.perf_counter() - t0
        step(1.0)
        return rep

    failure: InputError | None = None
    parsed: Parsed | None = None
    if data.size >= OVERLAP_HASH_BYTES:
        # A big file is parsed first (on every core) and then hashed on a second thread
        # while it is validated and its lake parts are written under temporary names
        # (SHA-256 of a few hundred MB costs half as much as the parse, the Parquet writer
        # is single-threaded). Every decision that depends on the hash (skip an already
        # imported file, report a parse error, write rejects, make the parts visible)
        # waits for it; a parse error only counts when the file was not imported yet.
        try:
            parsed = parser(data, str(path), opts)
        except InputError as exc:
            failure = exc
        t_parsed = time.perf_counter()
        report.timings["parse"] = t_parsed - t_read
        hasher = _Hasher(data)
        if failure is not None:
            if resolve():
                return skipped()
            raise failure
    else:
        # hash first: an already imported file is skipped without being parsed
        report.source_id = content_id(data)
        prior = lake.imported(report.source_id)
        hash_wait = time.perf_counter() - t_read
        if prior is not None and not force:
            return skipped()
        step(0.1)
        t_hash = time.perf_counter()
        parsed = parser(data, str(path), opts)
        t_parsed = time.perf_counter()
        report.timings["parse"] = t_parsed - t_hash
    assert parsed is not None
    step(0.6)
    report.rows_read = parsed.rows_read
    report.blank_lines = parsed.blank_lines
    report.notes = list(parsed.notes)
    report.ts_unit = parsed.ts.describe() if parsed.ts else None
    rejects = list(parsed.rejects)
    tables: dict[str, pa.Table] = {}
    inst = admission.instrument_of(fmt, parsed.venue, parsed.symbol, opts.venue, opts.symbol)
    if opts.instrument is not None:
        admission.check_instrument(lake, str(path), inst, opts.instrument)
    for kind, rows in parsed.kinds.items():
        table, rej, _bad = validate(kind, rows, str(path), opts.tick_size)
        rejects.extend(rej)
        tables[kind] = table
    bad_lines = {r.line for r in rejects}
    bad_rows = len(bad_lines)
    if rejects:
        if resolve():
            return skipped()
        report.rejected_rows = bad_rows
        _attach_raw(data, rejects)
        report.rejects = rejects
        if on_error == "stop":
            report.status = "failed"
            report.timings["read+hash"] = (t_read - t0) + hash_wait
            report.seconds = time.perf_counter() - t0
            raise ImportStopped(report, format_errors(str(path), rejects, bad_rows))
        dest = rejects_path or default_rejects_path(lake.db_dir, path)
        write_rejects(dest, rejects, append=rejects_append)
        report.rejects_path = str(dest)
    # A trade id seen twice in one file (a capture replaying messages after a reconnect)
    # is one trade: keep the first. Checked where the id is the numeric seq (Binance,
    # Tardis numeric ids); string ids (Bybit UUIDs) are unique per archive and hashing
    # millions of them would cost more than the whole parse.
    for kind, table in tables.items():
        if kind == "trades" and parsed.seq_is_trade_id and table.num_rows:
            first = _first_occurrence(table["seq"].to_numpy())
            if not first.all():
                report.duplicates_dropped += table.num_rows - int(first.sum())
                tables[kind] = table.filter(pa.array(first))
    if not any(t.num_rows for t in tables.values()) and not rejects:
        report.status = "empty"
        report.notes.append("the file holds no data rows (only a header?): nothing imported")
    step(0.7)
    t_valid = time.perf_counter()
    report.timings["validate"] = t_valid - t_parsed
    waited = hash_wait
    # While the hash is still being computed the parts are staged (temporary names,
    # invisible); they are committed only once the file is known not to be imported yet.
    # Days that already hold parts (possibly this very file's) wait for the hash first,
    # so re-importing a big file is skipped without writing it.
    if hasher is not None and _touches_stored_days(lake, tables) and resolve():
        return skipped()
    # One source per stream and time (admission): another source over the same stream and
    # time is refused, or replaced with --force. The file's own earlier import is not a
    # conflict (re-import: skipped, or rewritten with --force).
    ranges = admission.stream_ranges(tables)
    conflicts = admission.overlaps(lake, ranges, exclude="")
    if conflicts:
        if resolve():
            return skipped()
        conflicts = [(k, s) for k, s in conflicts if s.source_id != report.source_id]
        if conflicts and not force:
            admission.refuse_overlaps(str(path), conflicts, ranges)
    replacing = frozenset(s.source_id for _, s in conflicts)
    staged: dict[str, StagedWrite] = {}
    try:
        for kind, table in tables.items():
            staged[kind] = lake.stage(kind, table, report.source_id or None, replacing)  # type: ignore[arg-type]
        if resolve():
            for st in staged.values():
                st.discard()
            return skipped()
        source_id = report.source_id
        for kind, table in tables.items():
            if f"part-{source_id}.parquet" in staged[kind].consulted:
                # a forced re-import de-duplicated against its own old part: write again
                staged[kind].discard()
                staged[kind] = lake.stage(kind, table, source_id, replacing)  # type: ignore[arg-type]
    except BaseException:
        for st in staged.values():
            st.discard()
        raise
    days: set[dt.date] = set()
    for kind, st in staged.items():
        wr = st.commit(source_id)
        report.imported[kind] = wr.rows
        report.duplicates_dropped += wr.duplicates_dropped
        days.update(wr.rows_by_day)
        if prior is not None:
            _drop_stale_parts(lake, kind, source_id, set(wr.rows_by_day))
    report.days = sorted(days)
    report.timings["lake write"] = time.perf_counter() - t_valid - (hash_wait - waited)
    report.timings["read+hash"] = (t_read - t0) + hash_wait
    lake.sources.record(
        source_id,
        str(path),
        fmt,
        report.imported.get("trades", 0),
        report.imported.get("quotes", 0),
        bad_rows,
        venue=inst.venue,
        symbol=inst.symbol,
        ranges=ranges,
    )
    report.notes.extend(admission.replace(lake, conflicts))
    step(1.0)
    report.seconds = time.perf_counter() - t0
    return report


def _touches_stored_days(lake: Lake, tables: dict[str, pa.Table]) -> bool:
    """Does any day covered by ``tables`` already hold a part of the same kind?"""
    for kind, table in tables.items():
        if table.num_rows == 0:
            continue
        lo_hi = pc.min_max(table["ts_ms"])
        lo, hi = (day_of_ms(int(lo_hi[k].as_py())) for k in ("min", "max"))
        span = (hi - lo).days
        if span <= 31:  # look at the few day directories, not the whole lake
            days = [lo + dt.timedelta(days=d) for d in range(span + 1)]
            if any(lake.parts(kind, d) for d in days):  # type: ignore[arg-type]
                return True
        elif any(lo <= d <= hi for d in lake.days(kind)):  # type: ignore[arg-type]
            return True
    return False


def _drop_stale_parts(lake: Lake, kind: str, source_id: str, keep: set[dt.date]) -> None:
    """After a forced re-import, remove this source's parts on days it no longer fills
    (e.g. re-imported with another --ts-unit), so no row of the old import survives."""
    for day in lake.days(kind):  # type: ignore[arg-type]
        if day not in keep:
            (lake.day_dir(kind, day) / f"part-{source_id}.parquet").unlink(missing_ok=True)  # type: ignore[arg-type]


def _first_occurrence(ids: np.ndarray) -> np.ndarray:
    """Mask of the first row of each distinct id (O(n) when ids are strictly increasing)."""
    if len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1])):
        return np.ones(len(ids), dtype=bool)
    first = np.zeros(len(ids), dtype=bool)
    _, pos = np.unique(ids, return_index=True)
    first[pos] = True
    return first


class ImportStopped(InputError):
    """A file had bad rows in ``stop`` mode; carries its report (nothing was written)."""

    def __init__(self, report: ImportReport, message: str) -> None:
        super().__init__(message)
        self.report = report
        self.done: list[ImportReport] = []  # files of the same run imported before it


def import_files(
    db_dir: str | Path,
    fmt: str,
    paths: list[str | Path],
    *,
    mapping: dict[str, str] | None = None,
    on_error: str = "stop",
    rejects_path: str | Path | None = None,
    kind: str | None = None,
    force: bool = False,
    ts_unit: str | None = None,
    show_progress: bool | None = None,
    settings: Settings | None = None,
    venue: str | None = None,
    symbol: str | None = None,
    instrument_checks: bool = True,
) -> list[ImportReport]:
    """Import ``paths`` of format ``fmt`` into the lake under ``db_dir``, in order.

    ``settings`` (default: the default config) gives the store's instrument facts that
    every file is checked against: ``instrument`` (the symbol the file holds) and
    ``tick_size`` (every price on its grid); see ``at_core.ingest.admission``.
    ``venue`` / ``symbol``: what a generic CSV holds (other formats say it themselves).
    ``instrument_checks=False`` skips the symbol and tick-grid checks (parser tests that
    feed arbitrary decimals; the CLI always checks).
    ``force`` re-imports an already imported file and replaces the rows of other sources
    that overlap the file's streams in time.

    ``on_error="stop"`` raises ``ImportStopped`` at the first file with a bad row (files
    before it stay imported, that file and the ones after it are not); ``"skip"`` imports
    the good rows and writes the rejects to ``rejects_path`` (default
    ``<db_dir>/rejects/<name>.rejects.csv``).
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if on_error not in ("stop", "skip"):
        raise InputError(f"--on-error must be stop or skip, not {on_error!r}")
    if kind is not None and fmt != "csv":
        raise InputError("--kind only applies to --format csv (other formats know their kind)")
    if mapping and fmt != "csv":
        raise InputError("--map only applies to --format csv")
    if ts_unit is not None and ts_unit not in ("s", "ms", "us", "ns", "iso"):
        raise InputError(f"--ts-unit must be one of s, ms, us, ns, iso, not {ts_unit!r}")
    if not paths:
        raise InputError("no input files")
    files = [Path(p) for p in paths]
    for p in files:
        if not p.is_file():
            raise InputError(f"{p}: no such file")
    lake = Lake(db_dir)
    if (venue or symbol) and fmt != "csv":
        raise InputError("--venue / --symbol only apply to --format csv (other formats say it)")
    settings = settings or load_settings()
    sweep(lake.db_dir)  # temporaries of an import killed earlier
    opts = Options(
        mapping=mapping,
        kind=kind,
        ts_unit=ts_unit,
        instrument=settings.instrument if instrument_checks else None,
        tick_size=settings.tick_size if instrument_checks else None,
        venue=venue,
        symbol=symbol,
    )
    total = sum(p.stat().st_size for p in files)
    if show_progress is None:
        show_progress = sys.stderr.isatty() and total > 32 << 20
    reports: list[ImportReport] = []
    shared_rejects = Path(rejects_path) if rejects_path else None
    if shared_rejects is not None and shared_rejects.exists():
        shared_rejects.unlink()
    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        desc="import",
        disable=not show_progress,
        file=sys.stderr,
    ) as bar:
        done = 0
        for p in files:
            on_disk = p.stat().st_size

            def advance(frac: float, base: int = done, size: int = on_disk) -> None:
                bar.update(base + int(size * frac) - bar.n)

            try:
                rep = import_file(
                    lake,
                    fmt,
                    p,
                    opts=opts,
                    on_error=on_error,
                    rejects_path=shared_rejects,
                    rejects_append=shared_rejects is not None,
                    force=force,
                    progress=advance,
                )
            except ImportStopped as exc:
                exc.done = reports
                raise
            done += on_disk
            advance(1.0)
            reports.append(rep)
    return reports
