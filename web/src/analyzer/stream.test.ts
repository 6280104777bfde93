import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { Aggregator } from './aggregate'
import { CsvGzReader } from './stream'

const T0 = Date.UTC(2025, 11, 17) / 1000

function iso(t: number): string {
  return new Date(t * 1000).toISOString().replace('T', ' ').replace('.000Z', '+00')
}

// A synthetic day: n devices at a 10 s cadence; device i loses every
// (i+5)th packet; A000 goes over 100 ppm at 03:00 for 3 minutes and over
// 500 for 1 minute.
function makeCsv(devices: number, seconds: number): { text: string; rows: number; lost: number[] } {
  const lines = ['time,sn,v_raw,ppm,temp,humi,bat,rssi,seq']
  const lost: number[] = new Array(devices).fill(0)
  let rows = 0
  for (let t = T0; t < T0 + seconds; t += 10) {
    for (let i = 0; i < devices; i++) {
      const k = (t - T0) / 10
      if (k > 0 && k % (i + 5) === 0) { lost[i]++; continue }
      const sn = 'A' + String(i).padStart(3, '0')
      let ppm = 10 + i
      const sod = t - T0
      if (i === 0 && sod >= 3 * 3600 && sod < 3 * 3600 + 180) ppm = 150
      if (i === 0 && sod >= 3 * 3600 + 60 && sod < 3 * 3600 + 120) ppm = 600
      lines.push(`${iso(t)},${sn},${2000 + ppm},${ppm},25.0,,${90 - Math.floor(sod / 3600)},-80,${k & 0xffff}`)
      rows++
    }
  }
  return { text: lines.join('\n') + '\n', rows, lost }
}

function feed(agg: Aggregator, bytes: Uint8Array, chunk = 4096): CsvGzReader {
  const r = new CsvGzReader(agg, 'f.csv.gz')
  for (let i = 0; i < bytes.length; i += chunk) r.push(bytes.subarray(i, Math.min(i + chunk, bytes.length)), false)
  r.push(new Uint8Array(0), true)
  return r
}

describe('CsvGzReader', () => {
  it('reads a day, counts rows, completeness, loss and the heat map', () => {
    const { text, rows, lost } = makeCsv(3, 6 * 3600)
    const agg = new Aggregator()
    feed(agg, gzipSync(Buffer.from(text)))
    const tot = agg.totals()
    expect(tot.good).toBe(rows)
    expect(tot.bad).toBe(0)
    expect(tot.headers).toBe(1)
    expect(tot.devices).toBe(3)
    const s = agg.summaries()
    for (let i = 0; i < 3; i++) {
      expect(s[i].lost).toBe(lost[i])
      expect(s[i].slotsFilled).toBe(6 * 360 - lost[i])
      expect(s[i].slotsExpected).toBe(8640)
    }
    expect(s[0].ppmMax).toBe(600)
    expect(s[0].batFirst).toBe(90)
    expect(s[0].batLast).toBe(85)
    const heat = agg.heatMap(100, 500, 0)
    expect(heat.sns).toEqual(['A000', 'A001', 'A002'])
    expect(heat.l1[0][3]).toBe(3)
    expect(heat.l2[0][3]).toBe(1)
    expect(heat.l1[1].reduce((a, b) => a + b, 0)).toBe(0)
    // Shanghai time shifts the alarm to 11:00.
    expect(agg.heatMap(100, 500, 480).l1[0][11]).toBe(3)
    const ms = agg.minuteSeries('A000')!
    const i3 = ms.t.indexOf(T0 + 3 * 3600 + 60)
    expect(ms.max[i3]).toBe(600)
  })

  it('reads a two-member gzip (files concatenated) and the header repeated', () => {
    const a = makeCsv(2, 600), b = makeCsv(2, 600)
    const both = Buffer.concat([gzipSync(Buffer.from(a.text)), gzipSync(Buffer.from(b.text))])
    const agg = new Aggregator()
    const r = feed(agg, both, 1000)
    expect(agg.totals().good).toBe(a.rows + b.rows)
    expect(agg.totals().headers).toBe(2)
    expect(r.members).toBe(2)
  })

  it('counts and shows bad lines with their line numbers', () => {
    const text = [
      'time,sn,v_raw,ppm,temp,humi,bat,rssi,seq',
      `${iso(T0)},A001,1,2,3,4,5,-6,1`,
      'garbage',
      `${iso(T0 + 10)},A001,1,x,3,4,5,-6,2`,
      `${iso(T0 + 20)},A001,1,2,3,4,5,-6,3`,
      '',
    ].join('\r\n')
    const agg = new Aggregator()
    feed(agg, gzipSync(Buffer.from(text)), 7)
    const tot = agg.totals()
    expect(tot.good).toBe(2)
    expect(tot.bad).toBe(2)
    expect(tot.badByReason.fields).toBe(1)
    expect(tot.badByReason.number).toBe(1)
    expect(agg.badSamples.map((b) => b.line)).toEqual([3, 4])
  })

  it('fails a truncated file instead of reporting it as complete', () => {
    const gz = gzipSync(Buffer.from(makeCsv(1, 600).text))
    const agg = new Aggregator()
    expect(() => feed(agg, gz.subarray(0, gz.length - 20))).toThrow()
  })
})
