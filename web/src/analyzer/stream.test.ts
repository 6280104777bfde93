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
    const lim = { A000: { l1: 100, l2: 500 }, A001: { l1: 100, l2: 500 }, A002: { l1: 100, l2: 500 } }
    const heat = agg.heatMap(lim)
    expect(heat.sns).toEqual(['A000', 'A001', 'A002'])
    // 03:00 UTC is 11:00 in the plant's zone (Asia/Shanghai by default).
    expect(heat.l1[0][11]).toBe(3)
    expect(heat.l2[0][11]).toBe(1)
    expect(heat.l1[1].reduce((a, b) => a + b, 0)).toBe(0)
    // The same readings in a UTC plant.
    const utc = new Aggregator('UTC')
    feed(utc, gzipSync(Buffer.from(text)))
    expect(utc.heatMap(lim).l1[0][3]).toBe(3)
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

  it('a complete Asia/Shanghai day file is one 100 % day, whatever the browser zone', () => {
    // 2025-12-17 00:00 to 24:00 at +08:00, written with +08 offsets as a
    // plant's archive is, two devices.
    const start = Date.UTC(2025, 11, 16, 16) / 1000
    const lines = ['time,sn,v_raw,ppm,temp,humi,bat,rssi,seq']
    const z = (t: number) => iso(t + 8 * 3600).replace('+00', '+08')
    for (let k = 0; k < 8640; k++) for (const sn of ['S1', 'S2']) lines.push(`${z(start + k * 10)},${sn},100,1,20,50,80,-70,${k}`)
    const agg = new Aggregator()
    feed(agg, gzipSync(Buffer.from(lines.join('\n') + '\n')), 65536)
    const tot = agg.totals()
    expect(tot.tz).toBe('Asia/Shanghai')
    expect(tot.days.length).toBe(1)
    expect(tot.days[0]).toBe(Date.UTC(2025, 11, 17) / 86400000)
    for (const s of agg.summaries()) {
      expect(s.slotsExpected).toBe(8640)
      expect(s.completenessPct).toBe(100)
    }
    // The minute series starts at local midnight (16:00 UTC the day before).
    expect(agg.minuteSeries('S1')!.t[0]).toBe(start)
    // Two consecutive local day files: still 100 %, two days.
    const next = lines.slice(1).map((l) => l.replace('2025-12-17', '2025-12-18').replace('2025-12-16', '2025-12-17'))
    feed(agg, gzipSync(Buffer.from(['time,sn,v_raw,ppm,temp,humi,bat,rssi,seq', ...next].join('\n') + '\n')))
    expect(agg.totals().days.length).toBe(2)
    for (const s of agg.summaries()) expect(s.completenessPct).toBe(100)
  })

  it('battery first → last by time, not by the order the files were dropped in', () => {
    const day = (d: number, bat: number) => gzipSync(Buffer.from(
      `time,sn,v_raw,ppm,temp,humi,bat,rssi,seq\n${iso(T0 + d * 86400)},B1,1,1,20,50,${bat},-70,${d}\n`))
    const agg = new Aggregator()
    feed(agg, day(2, 70)) // the later day dropped first
    feed(agg, day(0, 90))
    feed(agg, day(1, 80))
    const [s] = agg.summaries()
    expect(s.batFirst).toBe(90)
    expect(s.batLast).toBe(70)
    expect(s.batMin).toBe(70)
  })

  it('the heat map counts each device against its own limits and leaves unknown ones empty', () => {
    const { text } = makeCsv(3, 6 * 3600)
    const agg = new Aggregator()
    feed(agg, gzipSync(Buffer.from(text)))
    // A000 peaks at 150 then 600; A001 reads 11 ppm, A002 12 ppm.
    const heat = agg.heatMap({ A000: { l1: 200, l2: null }, A001: { l1: 10, l2: 11 } })
    expect(heat.l1[0][11]).toBe(1) // only the 600 ppm minute reaches 200
    expect(heat.l2[0].reduce((a, b) => a + b, 0)).toBe(0) // no level 2 known for A000
    expect(heat.l1[1].reduce((a, b) => a + b, 0)).toBe(6 * 60) // 11 ≥ 10 every minute
    expect(heat.l2[1].reduce((a, b) => a + b, 0)).toBe(6 * 60)
    expect(heat.limits[2]).toBeNull() // A002: no limits known, nothing counted
    expect(heat.l1[2].reduce((a, b) => a + b, 0)).toBe(0)
    // Levels the user typed apply to the devices without limits only.
    const fb = agg.heatMap({ A000: { l1: 200, l2: null } }, { l1: 12, l2: null })
    expect(fb.limits[2]).toEqual({ l1: 12, l2: null })
    expect(fb.l1[2].reduce((a, b) => a + b, 0)).toBe(6 * 60)
    expect(fb.l1[0][11]).toBe(1)
  })

  it('fails a truncated file instead of reporting it as complete', () => {
    const gz = gzipSync(Buffer.from(makeCsv(1, 600).text))
    const agg = new Aggregator()
    expect(() => feed(agg, gz.subarray(0, gz.length - 20))).toThrow()
  })
})
