import { describe, expect, it } from 'vitest'
import { trendAxisRange } from './trendAxis'

/** Every tick from min to max in steps of interval (what ECharts labels). */
function ticks(r: { min: number; max: number; interval: number }): number[] {
  const out: number[] = []
  for (let i = 0; r.min + i * r.interval <= r.max + 1e-9; i++) out.push(r.min + i * r.interval)
  return out
}

describe('side-panel trend axis', () => {
  it('reaches above a live value far above every minute point', () => {
    // the NOTES case: 412 ppm live on minute points that ended at ~240
    const r = trendAxisRange({ points: [18, 20, 22, 240], live: 412, limits: [] })!
    expect(r.max).toBeGreaterThan(412)
    expect(r.min).toBeLessThanOrEqual(18)
    expect(r.min).toBeGreaterThanOrEqual(0) // ppm: no negative ticks
    expect(r.max).toBe(500)
    expect(ticks(r)).toEqual([0, 100, 200, 300, 400, 500])
  })

  it('reaches below a live value under every minute point', () => {
    const r = trendAxisRange({ points: [100, 110, 120], live: 5, limits: [] })!
    expect(r.min).toBeLessThan(5)
    expect(r.min).toBeGreaterThanOrEqual(0)
    expect(r.max).toBeGreaterThan(120)
  })

  it('keeps limit lines above the data inside, with room for their label', () => {
    const r = trendAxisRange({ points: [10, 12, 11], live: 11, limits: [100, 300] })!
    expect(r.max).toBeGreaterThan(300)
    // at least 5 % of the span above the highest line for its label
    expect((r.max - 300) / (r.max - r.min)).toBeGreaterThanOrEqual(0.05)
    expect(r.min).toBeLessThanOrEqual(10)
  })

  it('limits below the data are covered too', () => {
    const r = trendAxisRange({ points: [500, 520], live: 510, limits: [100] })!
    expect(r.min).toBeLessThan(100)
    expect(r.max).toBeGreaterThan(520)
  })

  it('no data yet: nothing to scale, or only the live value and the limits', () => {
    expect(trendAxisRange({ points: [], live: null, limits: [] })).toBeNull()
    expect(trendAxisRange({ points: [null, undefined, NaN], live: undefined })).toBeNull()
    const r = trendAxisRange({ points: [], live: 50, limits: [100, null] })!
    expect(r.min).toBeLessThan(50)
    expect(r.max).toBeGreaterThan(100)
  })

  it('a flat line still gets a span, and small values keep round ticks', () => {
    const flat = trendAxisRange({ points: [0, 0, 0], live: 0 })!
    expect(flat.min).toBe(0)
    expect(flat.max).toBeGreaterThan(0)
    const r = trendAxisRange({ points: [20.1, 20.4, 20.9], live: 21 })!
    expect(r.min).toBeLessThanOrEqual(20.1)
    expect(r.max).toBeGreaterThanOrEqual(21)
    for (const t of ticks(r)) expect(Math.abs(t / r.interval - Math.round(t / r.interval))).toBeLessThan(1e-6)
    expect(String(r.max).length).toBeLessThanOrEqual(5) // no 21.099999999
  })

  it('negative values (an offset calibration) are not clamped at zero', () => {
    const r = trendAxisRange({ points: [-5, 3], live: 1 })!
    expect(r.min).toBeLessThan(-5)
    expect(r.max).toBeGreaterThan(3)
  })
})
