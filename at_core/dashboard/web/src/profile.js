// The volume profile of one minute as a series primitive: horizontal bars from the right
// edge of the price pane, the value area shaded, the POC marked. Prices map to pixels
// through the series, so the bars sit exactly on the candles' price scale.
import { SeriesPrimitive } from "./primitive.js";

export class ProfilePrimitive extends SeriesPrimitive {
  constructor() {
    super();
    this._profile = null;
    this._visible = false;
  }

  set(profile) {
    this._profile = profile;
    this.update();
  }

  setVisible(v) {
    this._visible = v;
    this.update();
  }

  visible() {
    return this._series !== null && this._visible && this._profile !== null;
  }

  draw(target) {
    const p = this._profile;
    const s = this._series;
    if (!p || !s || !p.price.length) return;
    target.useMediaCoordinateSpace(({ context: ctx, mediaSize }) => {
      const maxW = mediaSize.width * 0.28;
      const vmax = Math.max(...p.volume.map((v) => v || 0)) || 1;
      const right = mediaSize.width - 2;
      for (let i = 0; i < p.price.length; i++) {
        const lo = p.price[i];
        const y1 = s.priceToCoordinate(lo + p.bin_width);
        const y2 = s.priceToCoordinate(lo);
        if (y1 === null || y2 === null) continue;
        const h = Math.max(1, Math.abs(y2 - y1) - 1);
        const w = (maxW * (p.volume[i] || 0)) / vmax;
        const inVa = p.val !== null && p.vah !== null && lo >= p.val - 1e-9 && lo <= p.vah + 1e-9;
        const isPoc = p.poc !== null && Math.abs(lo - p.poc) < 1e-9;
        ctx.fillStyle = isPoc ? "rgba(240,160,32,0.95)" : inVa ? "rgba(79,143,230,0.75)" : "rgba(138,147,165,0.45)";
        ctx.fillRect(right - w, Math.min(y1, y2), w, h);
      }
      ctx.fillStyle = "rgba(214,218,226,0.9)";
      ctx.font = "11px system-ui";
      const label = `profile ${new Date(p.ts_min).toISOString().slice(11, 16)} UTC${p.valid ? "" : " (VA invalid)"}`;
      ctx.fillText(label, right - maxW, 14);
    });
  }
}
