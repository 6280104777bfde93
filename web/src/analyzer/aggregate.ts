// Aggregates archive readings per device in bounded memory: one minute
// bucket (min/max/sum/count), one 10 s slot bit and hourly battery/signal/
// baseline figures per device and UTC day. 1,000 devices × 1 day ≈ 30 MB,
// independent of the 8.6 M rows.
import type { BadReason, Reading } from './csv'
import { lossPct, newSeqState, stepSeq, type SeqState } from './seq'

export const CADENCE_S = 10
const SLOTS_PER_DAY = 86400 / CADENCE_S

interface DayBuf {
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

function newDay(): DayBuf {
  const d: DayBuf = {
    mMin: new Float32Array(1440).fill(Infinity),
    mMax: new Float32Array(1440).fill(-Infinity),
    mSum: new Float64Array(1440),
    mN: new Uint16Array(1440),
    slots: new Uint8Array(SLOTS_PER_DAY / 8),
    hBatSum: new Float64Array(24),
    hBatN: new Uint32Array(24),
    hRssiSum: new Float64Array(24),
    hRssiN: new Uint32Array(24),
    hPpmMin: new Float32Array(24).fill(Infinity),
    hVrawMin: new Float32Array(24).fill(Infinity),
  }
  return d
}

interface DeviceAgg {
  sn: string
  rows: number
  firstT: number
  lastT: number
  reordered: number
  seq: SeqState
  days: Map<number, DayBuf>
  batFirst: number
  batLast: number
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
  days: number[]
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
  l1: number[][] // [device][hour 0..23] minutes with max ≥ level 1
  l2: number[][]
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

function popcount8(b: number): number {
  b = b - ((b >> 1) & 0x55)
  b = (b & 0x33) + ((b >> 2) & 0x33)
  return (b + (b >> 4)) & 0x0f
}

const BAD_REASONS: BadReason[] = ['fields', 'time', 'sn', 'number', 'seq']

export class Aggregator {
  readonly devices = new Map<string, DeviceAgg>()
  readonly days = new Set<number>()
  readonly badSamples: BadSample[] = []
  lines = 0
  headers = 0
  good = 0
  badByReason: Record<BadReason, number> = { fields: 0, time: 0, sn: 0, number: 0, seq: 0 }
  maxSamples = 50

  bad(file: string, line: number, reason: BadReason, text: string): void {
    this.badByReason[reason]++
    if (this.badSamples.length < this.maxSamples) this.badSamples.push({ file, line, reason, text: text.slice(0, 200) })
  }

  add(r: Reading): void {
    this.good++
    let d = this.devices.get(r.sn)
    if (!d) {
      d = {
        sn: r.sn, rows: 0, firstT: r.t, lastT: r.t, reordered: 0, seq: newSeqState(), days: new Map(),
        batFirst: NaN, batLast: NaN, batMin: Infinity, rssiSum: 0, rssiN: 0, rssiWeak: 0, ppmMax: -Infinity, ppmMaxT: NaN,
      }
      this.devices.set(r.sn, d)
    }
    d.rows++
    if (r.t < d.lastT) d.reordered++
    else stepSeq(d.seq, r.seq)
    if (r.t < d.firstT) d.firstT = r.t
    if (r.t > d.lastT) d.lastT = r.t

    const ts = Math.floor(r.t)
    const day = Math.floor(ts / 86400)
    let b = d.days.get(day)
    if (!b) {
      b = newDay()
      d.days.set(day, b)
      this.days.add(day)
    }
    const sod = ts - day * 86400
    const m = (sod / 60) | 0
    const h = (sod / 3600) | 0
    if (r.ppm < b.mMin[m]) b.mMin[m] = r.ppm
    if (r.ppm > b.mMax[m]) b.mMax[m] = r.ppm
    b.mSum[m] += r.ppm
    if (b.mN[m] < 65535) b.mN[m]++
    const slot = (sod / CADENCE_S) | 0
    b.slots[slot >> 3] |= 1 << (slot & 7)
    if (r.ppm < b.hPpmMin[h]) b.hPpmMin[h] = r.ppm
    if (r.vRaw < b.hVrawMin[h]) b.hVrawMin[h] = r.vRaw
    if (!Number.isNaN(r.bat)) {
      b.hBatSum[h] += r.bat
      b.hBatN[h]++
      if (Number.isNaN(d.batFirst)) d.batFirst = r.bat
      d.batLast = r.bat
      if (r.bat < d.batMin) d.batMin = r.bat
    }
    if (!Number.isNaN(r.rssi)) {
      b.hRssiSum[h] += r.rssi
      b.hRssiN[h]++
      d.rssiSum += r.rssi
      d.rssiN++
      if (r.rssi < -100) d.rssiWeak++
    }
    if (r.ppm > d.ppmMax) { d.ppmMax = r.ppm; d.ppmMaxT = r.t }
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
      devices: this.devices.size, days: [...this.days].sort((a, b) => a - b),
      firstT: Number.isFinite(firstT) ? firstT : NaN, lastT: Number.isFinite(lastT) ? lastT : NaN,
    }
  }

  private hourly(d: DeviceAgg): HourlySeries {
    const out: HourlySeries = { sn: d.sn, t: [], bat: [], rssi: [], baseline: [] }
    for (const day of [...d.days.keys()].sort((a, b) => a - b)) {
      const b = d.days.get(day)!
      for (let h = 0; h < 24; h++) {
        if (b.hPpmMin[h] === Infinity) continue
        out.t.push(day * 86400 + h * 3600)
        out.bat.push(b.hBatN[h] ? b.hBatSum[h] / b.hBatN[h] : null)
        out.rssi.push(b.hRssiN[h] ? b.hRssiSum[h] / b.hRssiN[h] : null)
        out.baseline.push(b.hPpmMin[h])
      }
    }
    return out
  }

  /**
   * Per-device health: completeness counts the 10 s slots that hold at least
   * one reading against every slot of the days the archives cover (a device
   * silent all afternoon is not 100 %; a device in 1 s debug mode is not
   * 1000 %). Zero drift is the slope of the hourly minimum ppm (the baseline
   * between gas events) in ppm per day.
   */
  summaries(): DeviceSummary[] {
    const expected = this.days.size * SLOTS_PER_DAY
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
    for (const day of [...d.days.keys()].sort((a, b) => a - b)) {
      const b = d.days.get(day)!
      for (let m = 0; m < 1440; m++) {
        if (!b.mN[m]) continue
        out.t.push(day * 86400 + m * 60)
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
   * Alarm distribution: for each device and hour of the day (local time at
   * tzOffsetMin east of UTC), the minutes whose highest reading reached
   * level 1 and level 2. Thresholds are parameters so the page can change
   * them without reading the files again.
   */
  heatMap(level1: number, level2: number, tzOffsetMin: number): HeatMap {
    const sns = [...this.devices.keys()].sort()
    const l1: number[][] = [], l2: number[][] = []
    for (const sn of sns) {
      const d = this.devices.get(sn)!
      const r1 = new Array(24).fill(0), r2 = new Array(24).fill(0)
      for (const [day, b] of d.days) {
        for (let m = 0; m < 1440; m++) {
          if (!b.mN[m]) continue
          const mx = b.mMax[m]
          if (mx < level1 && mx < level2) continue
          const local = (((day * 1440 + m + tzOffsetMin) % 1440) + 1440) % 1440
          const h = (local / 60) | 0
          if (mx >= level1) r1[h]++
          if (mx >= level2) r2[h]++
        }
      }
      l1.push(r1)
      l2.push(r2)
    }
    return { sns, l1, l2 }
  }
}
