import { describe, expect, it } from 'vitest'
import { DEFAULT_TZ, ZoneOffset, formatInZone, validZone } from './zone'

describe('plant time zone', () => {
  it('Asia/Shanghai is +08:00 with local days starting at 16:00 UTC', () => {
    const z = new ZoneOffset('Asia/Shanghai')
    const t = Date.UTC(2025, 11, 17, 15, 59, 59) / 1000
    expect(z.at(t)).toBe(8 * 3600)
    expect(z.day(t)).toBe(Date.UTC(2025, 11, 17) / 86400000)
    expect(z.day(t + 1)).toBe(Date.UTC(2025, 11, 18) / 86400000)
    expect(z.dayStart(Date.UTC(2025, 11, 17) / 86400000)).toBe(Date.UTC(2025, 11, 16, 16) / 1000)
    expect(formatInZone(t, z)).toBe('2025-12-17 23:59:59')
  })
  it('a daylight saving day lasts 23 hours', () => {
    const z = new ZoneOffset('Europe/Berlin')
    const d = Date.UTC(2025, 2, 30) / 86400000
    expect(z.dayStart(d + 1) - z.dayStart(d)).toBe(23 * 3600)
    expect(z.dayStart(d)).toBe(Date.UTC(2025, 2, 29, 23) / 1000)
  })
  it('an unknown zone falls back to the default', () => {
    expect(validZone('Mars/Olympus')).toBe(false)
    expect(new ZoneOffset('Mars/Olympus').tz).toBe(DEFAULT_TZ)
  })
})
