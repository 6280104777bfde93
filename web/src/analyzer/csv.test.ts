import { describe, expect, it } from 'vitest'
import { isHeader, parseRecord, parseTime } from './csv'

describe('parseTime', () => {
  it('reads PostgreSQL timestamptz output', () => {
    expect(parseTime('2025-12-17 14:30:00+00')).toBe(Date.UTC(2025, 11, 17, 14, 30, 0) / 1000)
    expect(parseTime('2025-12-17 22:30:00+08')).toBe(Date.UTC(2025, 11, 17, 14, 30, 0) / 1000)
    expect(parseTime('2025-12-17 14:30:00.25+00')).toBeCloseTo(Date.UTC(2025, 11, 17, 14, 30, 0) / 1000 + 0.25, 6)
  })
  it('reads ISO 8601 and Unix seconds', () => {
    expect(parseTime('2024-02-29T00:00:00Z')).toBe(Date.UTC(2024, 1, 29) / 1000)
    expect(parseTime('2025-01-01T08:00:00+08:00')).toBe(Date.UTC(2025, 0, 1) / 1000)
    expect(parseTime('1734320000')).toBe(1734320000)
  })
  it('agrees with Date.parse over a range of days', () => {
    for (let d = 0; d < 2000; d += 37) {
      const ms = Date.UTC(2020, 0, 1) + d * 86400000 + 12345000
      const iso = new Date(ms).toISOString().replace('.000Z', 'Z')
      expect(parseTime(iso)).toBe(ms / 1000)
    }
  })
  it('rejects junk', () => {
    for (const s of ['', 'yesterday', '2025-13-01 00:00:00+00', '2025-12-17 25:00:00', '2025-12-17 14:30:00+0', '2025-12-17 14:30:00X'])
      expect(parseTime(s)).toBeNaN()
  })
})

describe('parseRecord', () => {
  const good = ['2025-12-17 14:30:00+00', 'A001', '2350.5', '45.2', '25.4', '', '85', '-75', '1024']
  it('accepts a good row with an empty humidity', () => {
    const r = parseRecord(good)
    expect(typeof r).toBe('object')
    if (typeof r === 'object') {
      expect(r.sn).toBe('A001')
      expect(r.ppm).toBe(45.2)
      expect(r.humi).toBeNaN()
      expect(r.seq).toBe(1024)
    }
  })
  it('names what is wrong', () => {
    expect(parseRecord(good.slice(0, 8))).toBe('fields')
    expect(parseRecord(['x', ...good.slice(1)])).toBe('time')
    expect(parseRecord([good[0], 'bad sn!', ...good.slice(2)])).toBe('sn')
    expect(parseRecord([...good.slice(0, 3), 'abc', ...good.slice(4)])).toBe('number')
    expect(parseRecord([...good.slice(0, 8), '70000'])).toBe('seq')
    expect(parseRecord([...good.slice(0, 8), '1.5'])).toBe('seq')
  })
  it('knows the header', () => {
    expect(isHeader('time,sn,v_raw,ppm,temp,humi,bat,rssi,seq'.split(','))).toBe(true)
    expect(isHeader(good)).toBe(false)
  })
})
