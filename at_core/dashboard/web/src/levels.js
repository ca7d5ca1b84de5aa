// A trade's stop and targets as horizontal segments from its entry minute to its exit
// minute (a series primitive: line series would join one trade's levels to the next).
import { SeriesPrimitive } from "./primitive.js";

export class TradeLevels extends SeriesPrimitive {
  constructor() {
    super();
    this._segs = [];
  }

  // segs: [{from, to (seconds), price, kind: "stop" | "tp1" | "tp2"}]
  set(segs) {
    this._segs = segs;
    this.update();
  }

  visible() {
    return this._series !== null && this._segs.length > 0;
  }

  draw(target) {
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
