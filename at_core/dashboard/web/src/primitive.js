// The plumbing every series primitive of the trading view shares (lightweight-charts v5's
// ISeriesPrimitive): it keeps the chart, the series and the update request it was attached
// with, and draws through one pane view on top. A subclass sets its data, calls update(),
// and implements draw(target) (and may override visible()).
export class SeriesPrimitive {
  constructor() {
    this._chart = null;
    this._series = null;
    this._request = null;
    this._view = {
      zOrder: () => "top",
      renderer: () => (this.visible() ? { draw: (t) => this.draw(t) } : null),
    };
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

  visible() {
    return this._series !== null;
  }

  update() {
    if (this._request) this._request();
  }

  draw() {}
}
