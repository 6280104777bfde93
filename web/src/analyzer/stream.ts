// Streaming csv.gz reader: fflate's Gunzip (reads every member of a
// multi-member file, unlike the browser's DecompressionStream), cut into
// lines on the raw bytes. Memory stays bounded by one chunk whatever the
// file size.
//
// The hot path (8.6 M rows a day, analyzer_day_s) reads a row of the
// archive's own format — nine unquoted ASCII fields, plain decimals — straight
// from the bytes: no string per field, the time parsed once per distinct
// value (a thousand devices share each timestamp) and the SN decoded once per
// run of the same device. Any other line (a header, a quoted field, non-ASCII
// text, an exponent, a bad value) goes to papaparse and parseRecord exactly
// as before, so what counts as bad and why is unchanged.
import { Gunzip } from 'fflate'
import Papa from 'papaparse'
import type { Aggregator, DeviceAgg } from './aggregate'
import { isHeader, parseRecord, parseTime, SN_RE } from './csv'

const NL = 10, CR = 13, COMMA = 44, QUOTE = 34, DOT = 46, MINUS = 45, PLUS = 43

export class CsvGzReader {
  private gz: Gunzip | null = null
  private readonly utf8 = new TextDecoder('utf-8')
  private carry: Uint8Array | null = null
  private line = 0
  // Field bounds of the current line (start, end) × 9.
  private readonly fs = new Int32Array(18)
  // The last distinct time and SN field and what they parsed to.
  private tBytes = new Uint8Array(40)
  private tLen = -1
  private tVal = NaN
  // SN bytes → device, by FNV-1a hash (chained on collision): a day
  // interleaves 1,000 devices row by row, so "same as the last" rarely hits.
  private readonly devs = new Map<number, SnEntry>()
  /** gzip members read: fflate reports each member after the first. */
  members = 1
  error: string | null = null

  constructor(private readonly agg: Aggregator, private readonly file: string) {}

  /** Feeds compressed bytes; `final` on the last chunk. */
  push(chunk: Uint8Array, final: boolean): void {
    if (!this.gz) {
      this.gz = new Gunzip((data, fin) => this.bytes(data, fin))
      this.gz.onmember = () => { this.members++ }
    }
    this.gz.push(chunk, final)
  }

  /**
   * Feeds decompressed bytes (from the inflate worker, see inflate.ts);
   * `final` on the last. Lines may span calls.
   */
  bytes(data: Uint8Array, final: boolean): void {
    let from = 0
    if (this.carry) {
      const nl = data.indexOf(NL)
      if (nl < 0 && !final) {
        this.carry = concat(this.carry, data)
        return
      }
      const end = nl < 0 ? data.length : nl
      const joined = concat(this.carry, data.subarray(0, end))
      this.carry = null
      this.lineAt(joined, 0, joined.length, joined.indexOf(QUOTE) >= 0)
      from = nl < 0 ? data.length : nl + 1
    }
    // The next quote in this chunk: a line holding one goes to papaparse.
    let q = data.indexOf(QUOTE, from)
    for (;;) {
      const nl = data.indexOf(NL, from)
      if (nl < 0) break
      if (q >= 0 && q < from) q = data.indexOf(QUOTE, from)
      this.lineAt(data, from, nl, q >= 0 && q < nl)
      from = nl + 1
    }
    if (from < data.length) {
      if (final) this.lineAt(data, from, data.length, data.indexOf(QUOTE, from) >= 0)
      // fflate may reuse its output buffer: keep a copy of the partial line.
      else this.carry = data.slice(from)
    }
  }

  /** One line, bytes [s, e) without its \n. */
  private lineAt(b: Uint8Array, s: number, e: number, quoted: boolean): void {
    this.line++
    if (e > s && b[e - 1] === CR) e--
    if (e === s) return // an empty line is no line (a trailing newline)
    this.agg.lines++
    if (quoted || !this.fast(b, s, e)) this.slow(this.utf8.decode(b.subarray(s, e)))
  }

  /**
   * The archive's own row format; false hands the line to the slow path.
   * Non-ASCII bytes need no check of their own: no field parser here accepts
   * one (digits, the time's fixed characters, SN_RE), so such a line fails
   * and is decoded as UTF-8 there.
   */
  private fast(b: Uint8Array, s: number, e: number): boolean {
    const fs = this.fs
    let k = 0
    fs[0] = s
    for (let i = s; i < e; i++) {
      if (b[i] === COMMA) {
        if (k === 8) return false // a tenth field
        fs[2 * k + 1] = i
        k++
        fs[2 * k] = i + 1
      }
    }
    if (k !== 8) return false
    fs[17] = e
    const t = this.time(b, fs[0], fs[1])
    if (t !== t) return false
    const vRaw = dec(b, fs[4], fs[5]), ppm = dec(b, fs[6], fs[7])
    if (vRaw !== vRaw || ppm !== ppm) return false
    const temp = opt(b, fs[8], fs[9]), humi = opt(b, fs[10], fs[11])
    const bat = opt(b, fs[12], fs[13]), rssi = opt(b, fs[14], fs[15])
    if (temp === undefined || humi === undefined || bat === undefined || rssi === undefined) return false
    let seq = -1
    if (fs[17] > fs[16]) {
      seq = 0
      if (fs[17] - fs[16] > 5) return false
      for (let i = fs[16]; i < fs[17]; i++) {
        const d = b[i] - 48
        if (d < 0 || d > 9) return false
        seq = seq * 10 + d
      }
      if (seq > 65535) return false
    }
    const d = this.device(b, fs[2], fs[3], t)
    if (d === null) return false
    this.agg.addTo(d, t, vRaw, ppm, bat, rssi, seq)
    return true
  }

  private time(b: Uint8Array, s: number, e: number): number {
    const n = e - s
    if (n === this.tLen && same(b, s, this.tBytes, n)) return this.tVal
    if (n > this.tBytes.length) return NaN
    this.tBytes.set(b.subarray(s, e))
    this.tLen = n
    this.tVal = parseTime(ascii(b, s, e))
    return this.tVal
  }

  private device(b: Uint8Array, s: number, e: number, t: number): DeviceAgg | null {
    let h = 0x811c9dc5
    for (let i = s; i < e; i++) h = Math.imul(h ^ b[i], 0x01000193)
    const n = e - s
    const first = this.devs.get(h) ?? null
    for (let x = first; x; x = x.next) if (x.bytes.length === n && same(b, s, x.bytes, n)) return x.dev
    const sn = ascii(b, s, e)
    if (!this.agg.has(sn) && !SN_RE.test(sn)) return null
    const entry: SnEntry = { bytes: b.slice(s, e), dev: this.agg.device(sn, t), next: first }
    this.devs.set(h, entry)
    return entry.dev
  }

  /** Any other line: papaparse's fields, then the checks that name what is wrong. */
  private slow(text: string): void {
    const agg = this.agg
    const f = Papa.parse<string[]>(text, { delimiter: ',', newline: '\n', skipEmptyLines: false }).data[0] ?? ['']
    if (isHeader(f)) { agg.headers++; return }
    const r = parseRecord(f)
    if (typeof r === 'string') agg.bad(this.file, this.line, r, f.join(','))
    else agg.add(r)
  }
}

interface SnEntry { bytes: Uint8Array; dev: DeviceAgg; next: SnEntry | null }

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}

function same(b: Uint8Array, s: number, ref: Uint8Array, n: number): boolean {
  for (let i = n - 1; i >= 0; i--) if (b[s + i] !== ref[i]) return false
  return true
}

function ascii(b: Uint8Array, s: number, e: number): string {
  return String.fromCharCode.apply(null, b.subarray(s, e) as unknown as number[])
}

/**
 * A plain decimal `[+-]digits[.digits]`, as Number() reads it (at most 15
 * digits: the integer and its power of ten are exact, so the one division
 * rounds the same way); NaN for anything else, which the slow path judges.
 */
function dec(b: Uint8Array, s: number, e: number): number {
  let i = s, neg = false
  if (i < e && (b[i] === MINUS || b[i] === PLUS)) { neg = b[i] === MINUS; i++ }
  let m = 0, digits = 0, scale = 1, dot = false
  for (; i < e; i++) {
    const c = b[i]
    if (c === DOT && !dot) { dot = true; continue }
    const d = c - 48
    if (d < 0 || d > 9) return NaN
    m = m * 10 + d
    digits++
    if (dot) scale *= 10
  }
  if (!digits || digits > 15) return NaN
  const v = m / scale
  return neg ? -v : v
}

/** An optional number: NaN when empty, undefined when not a plain decimal. */
function opt(b: Uint8Array, s: number, e: number): number | undefined {
  if (s === e) return NaN
  const v = dec(b, s, e)
  return v === v ? v : undefined
}

/** Reads a whole csv.gz from a byte stream (File.stream() in the worker). */
export async function readCsvGz(
  stream: ReadableStream<Uint8Array>, agg: Aggregator, file: string, onBytes: (n: number) => void,
): Promise<CsvGzReader> {
  const reader = new CsvGzReader(agg, file)
  const r = stream.getReader()
  for (;;) {
    const { value, done } = await r.read()
    if (done) {
      reader.push(new Uint8Array(0), true)
      break
    }
    reader.push(value, false)
    onBytes(value.byteLength)
  }
  return reader
}
