// The footprint as a custom series: per minute, one cell per price bin with the volume sold
// into the bid x bought at the ask, coloured by delta, with diagonal imbalances outlined
// (green: ask >= ratio x bid one bin lower; red: the mirror). Numbers are drawn only where
// a cell is big enough to read them.
import { customSeriesDefaultOptions } from "./vendor/lightweight-charts.mjs";

const short = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

class FootprintRenderer {
  constructor() {
    this._data = null;
    this._opts = null;
  }
  update(data, opts) {
    this._data = data;
    this._opts = opts;
  }
  draw(target, priceToY) {
    const d = this._data;
    if (!d || !d.visibleRange) return;
    target.useMediaCoordinateSpace(({ context: ctx }) => {
      const w = Math.max(2, d.barSpacing * 0.92);
      for (let i = d.visibleRange.from; i < d.visibleRange.to; i++) {
        const bar = d.bars[i];
        const row = bar && bar.originalData;
        if (!row || !row.cells) continue;
        const vmax = row.vmax || 1;
        for (const c of row.cells) {
          const y1 = priceToY(c.p + row.bw);
          const y2 = priceToY(c.p);
          if (y1 === null || y2 === null) continue;
          const top = Math.min(y1, y2);
          const h = Math.max(1, Math.abs(y2 - y1) - 1);
          const a = Math.min(0.85, 0.15 + (0.7 * Math.abs(c.d)) / vmax);
          ctx.fillStyle = c.d >= 0 ? `rgba(38,166,154,${a})` : `rgba(239,83,80,${a})`;
          ctx.fillRect(bar.x - w / 2, top, w, h);
          if (c.ai) { ctx.strokeStyle = "#7CFC00"; ctx.lineWidth = 1.5; ctx.strokeRect(bar.x, top, w / 2, h); }
          if (c.bi) { ctx.strokeStyle = "#ff6b6b"; ctx.lineWidth = 1.5; ctx.strokeRect(bar.x - w / 2, top, w / 2, h); }
          if (w >= 56 && h >= 10) {
            ctx.fillStyle = "#e8ebf0";
            ctx.font = `${Math.min(11, h - 1)}px system-ui`;
            ctx.textAlign = "center";
            ctx.textBaseline = "middle";
            ctx.fillText(`${short(c.b)} x ${short(c.a)}`, bar.x, top + h / 2);
          }
        }
      }
    });
  }
}

export class FootprintSeries {
  constructor() {
    this._renderer = new FootprintRenderer();
  }
  renderer() {
    return this._renderer;
  }
  update(data, opts) {
    this._renderer.update(data, opts);
  }
  priceValueBuilder(row) {
    return [row.low, row.high, row.close];
  }
  isWhitespace(row) {
    return row.cells === undefined;
  }
  defaultOptions() {
    return { ...customSeriesDefaultOptions, priceLineVisible: false, lastValueVisible: false };
  }
}

// Server columns -> one row per minute for the series.
export function footprintRows(fp) {
  const byTs = new Map();
  for (let i = 0; i < fp.ts.length; i++) {
    const ts = fp.ts[i];
    if (!byTs.has(ts)) byTs.set(ts, []);
    byTs.get(ts).push({ p: fp.price[i], b: fp.bid[i], a: fp.ask[i], n: fp.ambiguous[i],
      d: fp.delta[i], ai: fp.ask_imbalance[i], bi: fp.bid_imbalance[i] });
  }
  const rows = [];
  for (const [ts, cells] of byTs) {
    const lows = cells.map((c) => c.p);
    rows.push({
      time: ts / 1000, ts, cells, bw: fp.bin_width,
      low: Math.min(...lows), high: Math.max(...lows) + fp.bin_width, close: lows[0],
      vmax: Math.max(...cells.map((c) => Math.abs(c.d))),
    });
  }
  rows.sort((a, b) => a.time - b.time);
  return rows;
}
