// The y-axis of the big screen's side-panel trend. ECharts scales an axis to
// the series data only: the minute points lag the live reading shown beside
// the chart, and the alarm level lines (markLine) are not data at all. A
// wall screen must never show 412 ppm live on an axis that ends at 240, or
// hide a limit line above the top, so the extent is taken over all three.

export interface AxisRange {
  min: number
  max: number
  /** Tick step: min and max are multiples of it, so every label is round. */
  interval: number
}

export interface AxisInput {
  /** Every value the chart's series plot (minute averages, maxima). */
  points: Iterable<number | null | undefined>
  /** The live reading shown beside the chart. */
  live?: number | null
  /** Alarm level lines drawn on the chart. */
  limits?: Iterable<number | null | undefined>
}

/** 1, 2 or 5 × 10ⁿ, the smallest such step ≥ raw. */
function niceStep(raw: number): number {
  const e = Math.floor(Math.log10(raw))
  const f = raw / 10 ** e
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * 10 ** e
}

/**
 * The y extent covering every point, the live value and the limits, with
 * `headroom` (share of the span) above and below so the top value and a
 * level line's label stay inside the grid; never below 0 when nothing is
 * negative (ppm). Rounded out to about five round ticks. null when there is
 * nothing to plot yet (ECharts' own default axis).
 */
export function trendAxisRange(input: AxisInput, headroom = 0.1, ticks = 5): AxisRange | null {
  let lo = Infinity, hi = -Infinity
  const take = (v: number | null | undefined): void => {
    if (typeof v !== 'number' || !Number.isFinite(v)) return
    if (v < lo) lo = v
    if (v > hi) hi = v
  }
  for (const v of input.points) take(v)
  take(input.live)
  for (const v of input.limits ?? []) take(v)
  if (lo > hi) return null
  const span = hi - lo
  const pad = span > 0 ? span * headroom : Math.max(Math.abs(hi) * headroom, 1)
  let min = lo - pad
  const max = hi + pad
  if (lo >= 0 && min < 0) min = 0
  const step = niceStep((max - min) / ticks)
  const digits = Math.max(0, -Math.floor(Math.log10(step)))
  const round = (x: number): number => Number(x.toFixed(digits))
  return { min: round(Math.floor(min / step + 1e-9) * step), max: round(Math.ceil(max / step - 1e-9) * step), interval: step }
}
