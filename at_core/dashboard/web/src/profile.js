// The volume profile of one minute as a series primitive: horizontal bars from the right
// edge of the price pane, the value area shaded, the POC marked. Prices map to pixels
// through the series, so the bars sit exactly on the candles' price scale.
export class ProfilePrimitive {
  constructor() {
    this._profile = null;
    this._visible = false;
    this._series = null;
    this._request = null;
    const self = this;
    this._view = {
      zOrder: () => "top",
      renderer: () => (self._visible && self._profile ? { draw: (t) => self._draw(t) } : null),
    };
  }

  attached({ series, requestUpdate }) {
    this._series = series;
    this._request = requestUpdate;
  }

  detached() {
    this._series = null;
  }

  paneViews() {
    return [this._view];
  }

  updateAllViews() {}

  set(profile) {
    this._profile = profile;
    if (this._request) this._request();
  }

  setVisible(v) {
    this._visible = v;
    if (this._request) this._request();
  }

  _draw(target) {
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
