// Row-level parsing of sensor_data_YYYYMMDD.csv archives (R-ST-4 header
// `time,sn,v_raw,ppm,temp,humi,bat,rssi,seq`). Everything here is pure so
// that Vitest can check it without a browser.

export const HEADER = ['time', 'sn', 'v_raw', 'ppm', 'temp', 'humi', 'bat', 'rssi', 'seq'] as const

export type BadReason = 'fields' | 'time' | 'sn' | 'number' | 'seq'

export interface Reading {
  t: number // Unix seconds (may carry a fraction)
  sn: string
  vRaw: number
  ppm: number
  temp: number // NaN when empty
  humi: number
  bat: number
  rssi: number
  seq: number // -1 when empty
}

export const SN_RE = /^[A-Za-z0-9_.:-]{1,64}$/

function digits(s: string, from: number, n: number): number {
  let v = 0
  for (let i = from; i < from + n; i++) {
    const c = s.charCodeAt(i) - 48
    if (c < 0 || c > 9) return NaN
    v = v * 10 + c
  }
  return v
}

// Days from 1970-01-01 to y-m-d (proleptic Gregorian), Howard Hinnant's
// days_from_civil; avoids a Date object per row on an 8.6 M-row day.
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
}

/**
 * Parses the time column: PostgreSQL's `2025-12-17 14:30:00+00` (COPY of a
 * timestamptz), ISO 8601 `2025-12-17T14:30:00.5Z` / `+08:00`, or plain Unix
 * seconds. Returns NaN when it is none of these.
 */
export function parseTime(s: string): number {
  const n = s.length
  if (n === 0) return NaN
  if (n <= 12 && /^\d+(\.\d+)?$/.test(s)) return Number(s)
  if (n < 19 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) return NaN
  const sep = s.charCodeAt(10)
  if (sep !== 32 && sep !== 84) return NaN
  const y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2)
  const h = digits(s, 11, 2), mi = digits(s, 14, 2), se = digits(s, 17, 2)
  if (!(mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && se <= 60)) return NaN
  let i = 19
  let frac = 0
  if (i < n && s.charCodeAt(i) === 46) {
    let scale = 0.1
    i++
    const start = i
    while (i < n) {
      const c = s.charCodeAt(i) - 48
      if (c < 0 || c > 9) break
      frac += c * scale
      scale /= 10
      i++
    }
    if (i === start) return NaN
  }
  let off = 0
  if (i < n) {
    const c = s.charCodeAt(i)
    if (c === 90 /* Z */ && i === n - 1) {
      off = 0
    } else if (c === 43 || c === 45) {
      const oh = digits(s, i + 1, 2)
      let om = 0
      const rest = n - (i + 3)
      if (rest === 2) om = digits(s, i + 3, 2)
      else if (rest === 3 && s.charCodeAt(i + 3) === 58) om = digits(s, i + 4, 2)
      else if (rest !== 0) return NaN
      if (Number.isNaN(oh) || Number.isNaN(om)) return NaN
      off = (c === 43 ? 1 : -1) * (oh * 3600 + om * 60)
    } else {
      return NaN
    }
  }
  return daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se + frac - off
}

function num(s: string): number {
  if (s === '') return NaN
  const v = Number(s)
  return v
}

export function isHeader(f: string[]): boolean {
  return f.length > 0 && f[0] === 'time' && f[1] === 'sn'
}

/** Validates one CSV record; returns the reading or why it is bad. */
export function parseRecord(f: string[]): Reading | BadReason {
  if (f.length !== 9) return 'fields'
  const t = parseTime(f[0])
  if (Number.isNaN(t)) return 'time'
  const sn = f[1]
  if (!SN_RE.test(sn)) return 'sn'
  const vRaw = num(f[2])
  const ppm = num(f[3])
  if (!Number.isFinite(vRaw) || !Number.isFinite(ppm)) return 'number'
  const temp = num(f[4]), humi = num(f[5]), bat = num(f[6]), rssi = num(f[7])
  if ((f[4] !== '' && !Number.isFinite(temp)) || (f[5] !== '' && !Number.isFinite(humi)) ||
      (f[6] !== '' && !Number.isFinite(bat)) || (f[7] !== '' && !Number.isFinite(rssi))) return 'number'
  let seq = -1
  if (f[8] !== '') {
    seq = Number(f[8])
    if (!Number.isInteger(seq) || seq < 0 || seq > 65535) return 'seq'
  }
  return { t, sn, vRaw, ppm, temp, humi, bat, rssi, seq }
}
