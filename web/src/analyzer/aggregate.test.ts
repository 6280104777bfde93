import { describe, expect, it } from 'vitest'
import { Aggregator, slope } from './aggregate'

describe('analyzer math', () => {
  it('slope of a line', () => {
    expect(slope([0, 1, 2, 3], [1, 3, 5, 7])).toBeCloseTo(2, 12)
    expect(slope([0, 1], [0, 1])).toBeNaN()
  })
  it('zero drift in ppm per day from the hourly baseline', () => {
    const agg = new Aggregator('UTC')
    const t0 = 1734307200
    for (let h = 0; h < 24; h++) {
      for (let k = 0; k < 360; k++) {
        const t = t0 + h * 3600 + k * 10
        // baseline rises 0.5 ppm per hour = 12 ppm/day, with a spike each hour
        const ppm = 5 + 0.5 * h + (k === 100 ? 300 : 0)
        agg.add({ t, sn: 'D1', vRaw: 1000, ppm, temp: 20, humi: NaN, bat: 80, rssi: -105, seq: (h * 360 + k) & 0xffff })
      }
    }
    const [s] = agg.summaries()
    expect(s.driftPpmPerDay).toBeCloseTo(12, 6)
    expect(s.completenessPct).toBeCloseTo(100, 9)
    expect(s.lossPct).toBe(0)
    expect(s.rssiWeakPct).toBe(100)
  })
  it('1 s debug readings do not push completeness past 100 %', () => {
    const agg = new Aggregator('UTC')
    for (let t = 0; t < 86400; t++) agg.add({ t, sn: 'D', vRaw: 1, ppm: 1, temp: NaN, humi: NaN, bat: NaN, rssi: NaN, seq: t & 0xffff })
    expect(agg.summaries()[0].completenessPct).toBe(100)
  })
})
