// Aggregates archive readings per device in bounded memory: one minute
// bucket (min/max/sum/count), one 10 s slot bit and hourly battery/signal/
// baseline figures per device and local day of the plant's time zone.
// 1,000 devices × 1 day ≈ 30 MB, independent of the 8.6 M rows.
import type { BadReason, Reading } from './csv'
import { lossPct, newSeqState, stepSeq, type SeqState } from './seq'
import { DEFAULT_TZ, ZoneOffset } from './zone'

export const CADENCE_S = 10
// A local day lasts 23 to 25 hours where the zone keeps daylight saving
// time; buffers are sized for the longest, indexed by seconds since local
// midnight (elapsed, so the repeated autumn hour does not collide).
const MAX_DAY_S = 25 * 3600
const MAX_MIN = MAX_DAY_S / 60
const MAX_H = 25
const MAX_SLOTS = MAX_DAY_S / CADENCE_S

interface DayBuf {
  start: number // Unix time of local midnight
  length: number // seconds in this local day (86,400 but on a DST change)
  mMin: Float32Array
  mMax: Float32Array
  mSum: Float64Array
  mN: Uint16Array
  slots: Uint8Array
  hBatSum: Float64Array
  hBatN: Uint32Array
  hRssiSum: Float64Array
  hRssiN: Uint32Array
  hPpmMin: Float32Array
  hVrawMin: Float32Array
}

function newDay(start: number, length: number): DayBuf {
  const d: DayBuf = {
    start, length,
    mMin: new Float32Array(MAX_MIN).fill(Infinity),
    mMax: new Float32Array(MAX_MIN).fill(-Infinity),
    mSum: new Float64Array(MAX_MIN),
    mN: new Uint16Array(MAX_MIN),
    slots: new Uint8Array(MAX_SLOTS / 8),
    hBatSum: new Float64Array(MAX_H),
    hBatN: new Uint32Array(MAX_H),
    hRssiSum: new Float64Array(MAX_H),
    hRssiN: new Uint32Array(MAX_H),
    hPpmMin: new Float32Array(MAX_H).fill(Infinity),
    hVrawMin: new Float32Array(MAX_H).fill(Infinity),
  }
  return d
}

/** One device's running figures (opaque outside this file but for the reader's cache). */
export interface DeviceAgg {
  sn: string
  rows: number
  firstT: number
  lastT: number
  reordered: number
  seq: SeqState
  days: Map<number, DayBuf>
  // The day the last row went to, so a run of rows skips the map lookup.
  curDay: number
  curBuf: DayBuf | null
  batFirst: number
  batFirstT: number
  batLast: number
  batLastT: number
  batMin: number
  rssiSum: number
  rssiN: number
  rssiWeak: number
  ppmMax: number
  ppmMaxT: number
}

export interface BadSample {
  file: string
  line: number
  reason: BadReason
  text: string
}

export interface DeviceSummary {
  sn: string
  rows: number
  firstT: number
  lastT: number
  slotsFilled: number
  slotsExpected: number
  completenessPct: number
  lost: number
  duplicates: number
  resets: number
  reordered: number
  lossPct: number
  batFirst: number
  batLast: number
  batMin: number
  rssiAvg: number
  rssiWeakPct: number
  ppmMax: number
  ppmMaxT: number
  baselineFirst: number
  baselineLast: number
  driftPpmPerDay: number
}

export interface Totals {
  lines: number
  headers: number
  good: number
  bad: number
  badByReason: Record<BadReason, number>
  devices: number
  days: number[] // local day numbers (days since 1970-01-01 in tz)
  tz: string
  firstT: number
  lastT: number
}

export interface MinuteSeries {
  sn: string
  t: number[] // minute start, Unix seconds
  min: number[]
  max: number[]
  avg: number[]
}

export interface HourlySeries {
  sn: string
  t: number[]
  bat: (number | null)[]
  rssi: (number | null)[]
  baseline: (number | null)[]
}

export interface HeatMap {
  sns: string[]
  l1: number[][] // [device][local hour 0..23] minutes with max ≥ level 1
  l2: number[][]
  /** Per device: the limits used, or null when none is known (row left empty). */
  limits: (DeviceLimits | null)[]
}

/** One device's alarm limits (level 1 / level 2 HIGH), as GET /api/devices gives them. */
export interface DeviceLimits {
  l1: number | null
  l2: number | null
}

/** Least-squares slope of y over x; NaN with fewer than 3 points. */
export function slope(x: number[], y: number[]): number {
  const n = x.length
  if (n < 3) return NaN
  let sx = 0, sy = 0
  for (let i = 0; i < n; i++) { sx += x[i]; sy += y[i] }
  const mx = sx / n, my = sy / n
  let num = 0, den = 0
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx
    num += dx * (y[i] - my)
    den += dx * dx
  }
  return den > 0 ? num / den : NaN
}

/** Limits with at least one level set. */
function known(l: DeviceLimits | null | undefined): l is DeviceLimits {
  return !!l && (l.l1 !== null || l.l2 !== null)
}

function popcount8(b: number): number {
  b = b - ((b >> 1) & 0x55)
  b = (b & 0x33) + ((b >> 2) & 0x33)
  return (b + (b >> 4)) & 0x0f
}

const BAD_REASONS: BadReason[] = ['fields', 'time', 'sn', 'number', 'seq']

export class Aggregator {
  readonly devices = new Map<string, DeviceAgg>()
  /** Local days seen → their length in seconds. */
  readonly days = new Map<number, number>()
  readonly badSamples: BadSample[] = []
  readonly zone: ZoneOffset
  lines = 0
  headers = 0
  good = 0
  badByReason: Record<BadReason, number> = { fields: 0, time: 0, sn: 0, number: 0, seq: 0 }
  maxSamples = 50
  // The device of the previous row: archives come sorted by time, so
  // consecutive rows are often the same device.
  private lastSn = ''
  private lastDev: DeviceAgg | null = null

  /** `tz`: the plant's IANA zone; days, hours and the heat map are its local ones. */
  constructor(tz: string = DEFAULT_TZ) {
    this.zone = new ZoneOffset(tz)
  }

  bad(file: string, line: number, reason: BadReason, text: string): void {
    this.badByReason[reason]++
    if (this.badSamples.length < this.maxSamples) this.badSamples.push({ file, line, reason, text: text.slice(0, 200) })
  }

  /** Known SN: skips the SN check of a row for a device already seen. */
  has(sn: string): boolean {
    return sn === this.lastSn || this.devices.has(sn)
  }

  /** The device `sn` (a valid SN), created on first use at time `t`. */
  device(sn: string, t: number): DeviceAgg {
    if (sn === this.lastSn && this.lastDev) return this.lastDev
    let d = this.devices.get(sn)
    if (!d) {
      d = {
        sn, rows: 0, firstT: t, lastT: t, reordered: 0, seq: newSeqState(), days: new Map(), curDay: NaN, curBuf: null,
        batFirst: NaN, batFirstT: Infinity, batLast: NaN, batLastT: -Infinity, batMin: Infinity,
        rssiSum: 0, rssiN: 0, rssiWeak: 0, ppmMax: -Infinity, ppmMaxT: NaN,
      }
      this.devices.set(sn, d)
    }
    this.lastSn = sn
    this.lastDev = d
    return d
  }

  private dayBuf(d: DeviceAgg, t: number): DayBuf {
    const day = this.zone.day(t)
    let b = d.days.get(day)
    if (!b) {
      const start = this.zone.dayStart(day)
      const length = this.zone.dayStart(day + 1) - start
      b = newDay(start, length)
      d.days.set(day, b)
      this.days.set(day, length)
    }
    d.curDay = day
    d.curBuf = b
    return b
  }

  add(r: Reading): void {
    this.addRow(r.t, r.sn, r.vRaw, r.ppm, r.bat, r.rssi, r.seq)
  }

  /** One valid row. NaN bat/rssi: empty; seq -1: empty. */
  addRow(t: number, sn: string, vRaw: number, ppm: number, bat: number, rssi: number, seq: number): void {
    this.addTo(this.device(sn, t), t, vRaw, ppm, bat, rssi, seq)
  }

  /** addRow for a device already looked up (the reader's hot path: no string, no map per row). */
  addTo(d: DeviceAgg, t: number, vRaw: number, ppm: number, bat: number, rssi: number, seq: number): void {
    this.good++
    d.rows++
    if (t < d.lastT) d.reordered++
    else stepSeq(d.seq, seq)
    if (t < d.firstT) d.firstT = t
    if (t > d.lastT) d.lastT = t

    // Rows of a device mostly fall in the day of its previous row.
    let b = d.curBuf
    if (!b || t < b.start || t >= b.start + b.length) b = this.dayBuf(d, t)
    let sod = Math.floor(t) - b.start
    if (sod >= b.length) sod = b.length - 1
    else if (sod < 0) sod = 0
    const m = (sod / 60) | 0
    const h = (sod / 3600) | 0
    if (ppm < b.mMin[m]) b.mMin[m] = ppm
    if (ppm > b.mMax[m]) b.mMax[m] = ppm
    b.mSum[m] += ppm
    if (b.mN[m] < 65535) b.mN[m]++
    const slot = (sod / CADENCE_S) | 0
    b.slots[slot >> 3] |= 1 << (slot & 7)
    if (ppm < b.hPpmMin[h]) b.hPpmMin[h] = ppm
    if (vRaw < b.hVrawMin[h]) b.hVrawMin[h] = vRaw
    if (bat === bat) {
      b.hBatSum[h] += bat
      b.hBatN[h]++
      // First and last by time, whatever order the files were dropped in.
      if (t < d.batFirstT) { d.batFirstT = t; d.batFirst = bat }
      if (t >= d.batLastT) { d.batLastT = t; d.batLast = bat }
      if (bat < d.batMin) d.batMin = bat
    }
    if (rssi === rssi) {
      b.hRssiSum[h] += rssi
      b.hRssiN[h]++
      d.rssiSum += rssi
      d.rssiN++
      if (rssi < -100) d.rssiWeak++
    }
    if (ppm > d.ppmMax) { d.ppmMax = ppm; d.ppmMaxT = t }
  }

  totals(): Totals {
    let bad = 0
    for (const k of BAD_REASONS) bad += this.badByReason[k]
    let firstT = Infinity, lastT = -Infinity
    for (const d of this.devices.values()) {
      if (d.firstT < firstT) firstT = d.firstT
      if (d.lastT > lastT) lastT = d.lastT
    }
    return {
      lines: this.lines, headers: this.headers, good: this.good, bad, badByReason: { ...this.badByReason },
      devices: this.devices.size, days: [...this.days.keys()].sort((a, b) => a - b), tz: this.zone.tz,
      firstT: Number.isFinite(firstT) ? firstT : NaN, lastT: Number.isFinite(lastT) ? lastT : NaN,
    }
  }

  private sortedDays(d: DeviceAgg): DayBuf[] {
    return [...d.days.keys()].sort((a, b) => a - b).map((k) => d.days.get(k)!)
  }

  private hourly(d: DeviceAgg): HourlySeries {
    const out: HourlySeries = { sn: d.sn, t: [], bat: [], rssi: [], baseline: [] }
    for (const b of this.sortedDays(d)) {
      for (let h = 0; h < MAX_H; h++) {
        if (b.hPpmMin[h] === Infinity) continue
        out.t.push(b.start + h * 3600)
        out.bat.push(b.hBatN[h] ? b.hBatSum[h] / b.hBatN[h] : null)
        out.rssi.push(b.hRssiN[h] ? b.hRssiSum[h] / b.hRssiN[h] : null)
        out.baseline.push(b.hPpmMin[h])
      }
    }
    return out
  }

  /**
   * Per-device health: completeness counts the 10 s slots that hold at least
   * one reading against every slot of the local days the archives cover (a
   * device silent all afternoon is not 100 %; a device in 1 s debug mode is
   * not 1000 %). Zero drift is the slope of the hourly minimum ppm (the
   * baseline between gas events) in ppm per day.
   */
  summaries(): DeviceSummary[] {
    let expected = 0
    for (const len of this.days.values()) expected += len / CADENCE_S
    const out: DeviceSummary[] = []
    for (const d of this.devices.values()) {
      let filled = 0
      for (const b of d.days.values()) for (let i = 0; i < b.slots.length; i++) filled += popcount8(b.slots[i])
      const hs = this.hourly(d)
      const x: number[] = [], y: number[] = []
      for (let i = 0; i < hs.t.length; i++) { x.push(hs.t[i]); y.push(hs.baseline[i] as number) }
      const sl = slope(x, y)
      out.push({
        sn: d.sn, rows: d.rows, firstT: d.firstT, lastT: d.lastT,
        slotsFilled: filled, slotsExpected: expected,
        completenessPct: expected ? (100 * filled) / expected : 0,
        lost: d.seq.lost, duplicates: d.seq.duplicates, resets: d.seq.resets, reordered: d.reordered,
        lossPct: lossPct(d.seq),
        batFirst: d.batFirst, batLast: d.batLast, batMin: d.batMin === Infinity ? NaN : d.batMin,
        rssiAvg: d.rssiN ? d.rssiSum / d.rssiN : NaN,
        rssiWeakPct: d.rssiN ? (100 * d.rssiWeak) / d.rssiN : 0,
        ppmMax: d.ppmMax, ppmMaxT: d.ppmMaxT,
        baselineFirst: y.length ? y[0] : NaN, baselineLast: y.length ? y[y.length - 1] : NaN,
        driftPpmPerDay: Number.isNaN(sl) ? NaN : sl * 86400,
      })
    }
    out.sort((a, b) => (a.sn < b.sn ? -1 : a.sn > b.sn ? 1 : 0))
    return out
  }

  minuteSeries(sn: string): MinuteSeries | null {
    const d = this.devices.get(sn)
    if (!d) return null
    const out: MinuteSeries = { sn, t: [], min: [], max: [], avg: [] }
    for (const b of this.sortedDays(d)) {
      for (let m = 0; m < MAX_MIN; m++) {
        if (!b.mN[m]) continue
        out.t.push(b.start + m * 60)
        out.min.push(b.mMin[m])
        out.max.push(b.mMax[m])
        out.avg.push(b.mSum[m] / b.mN[m])
      }
    }
    return out
  }

  hourlySeries(sn: string): HourlySeries | null {
    const d = this.devices.get(sn)
    return d ? this.hourly(d) : null
  }

  /**
   * Alarm distribution: for each device and local hour of the day, the
   * minutes whose highest reading reached that device's level 1 and level 2.
   * `limits` holds each device's own limits (GET /api/devices); `fallback`
   * applies to devices it does not know, and without it such a device's
   * row stays empty and its `limits` entry null, so the page can say so
   * instead of painting it against a made-up threshold.
   */
  heatMap(limits: Record<string, DeviceLimits>, fallback: DeviceLimits | null = null): HeatMap {
    const sns = [...this.devices.keys()].sort()
    const l1: number[][] = [], l2: number[][] = [], used: (DeviceLimits | null)[] = []
    for (const sn of sns) {
      const d = this.devices.get(sn)!
      const r1 = new Array(24).fill(0), r2 = new Array(24).fill(0)
      const own = limits[sn]
      const lim = known(own) ? own : known(fallback) ? fallback : null
      used.push(lim)
      const a = lim?.l1 ?? Infinity, c = lim?.l2 ?? Infinity
      if (lim) {
        for (const b of d.days.values()) {
          for (let m = 0; m < MAX_MIN; m++) {
            if (!b.mN[m]) continue
            const mx = b.mMax[m]
            if (mx < a && mx < c) continue
            // The wall-clock hour of this minute (on a DST day the elapsed
            // minute is shifted by the change).
            const h = (((b.start + m * 60 + this.zone.at(b.start + m * 60)) % 86400) / 3600) | 0
            if (mx >= a) r1[h]++
            if (mx >= c) r2[h]++
          }
        }
      }
      l1.push(r1)
      l2.push(r2)
    }
    return { sns, l1, l2, limits: used }
  }
}
