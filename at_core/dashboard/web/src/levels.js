// A trade's stop and targets as horizontal segments from its entry minute to its exit
// minute (a series primitive: line series would join one trade's levels to the next).
export class TradeLevels {
  constructor() {
    this._segs = [];
    this._chart = null;
    this._series = null;
    this._request = null;
    const self = this;
    this._view = { zOrder: () => "top", renderer: () => ({ draw: (t) => self._draw(t) }) };
  }
  attached({ chart, series, requestUpdate }) {
    this._chart = chart;
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
  // segs: [{from, to (seconds), price, kind: "stop" | "tp1" | "tp2"}]
  set(segs) {
    this._segs = segs;
    if (this._request) this._request();
  }
  _draw(target) {
    if (!this._series || !this._segs.length) return;
    const ts = this._chart.timeScale();
    target.useMediaCoordinateSpace(({ context: ctx }) => {
      ctx.lineWidth = 1.5;
      ctx.setLineDash([5, 3]);
      for (const s of this._segs) {
        const x1 = ts.timeToCoordinate(s.from);
        const x2 = ts.timeToCoordinate(s.to);
        const y = this._series.priceToCoordinate(s.price);
        if (x1 === null || x2 === null || y === null) continue;
        ctx.strokeStyle = s.kind === "stop" ? "#ef5350" : "#26a69a";
        ctx.beginPath();
        ctx.moveTo(x1, y);
        ctx.lineTo(x2, y);
        ctx.stroke();
      }
      ctx.setLineDash([]);
    });
  }
}
