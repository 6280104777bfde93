// Streaming csv.gz reader: fflate's Gunzip (reads every member of a
// multi-member file, unlike the browser's DecompressionStream), UTF-8
// decoding, then complete lines handed in blocks to papaparse. Memory stays
// bounded by one chunk whatever the file size.
import { DecodeUTF8, Gunzip } from 'fflate'
import Papa from 'papaparse'
import type { Aggregator } from './aggregate'
import { isHeader, parseRecord } from './csv'

export class CsvGzReader {
  private readonly gz: Gunzip
  private readonly dec: DecodeUTF8
  private carry = ''
  private line = 0
  /** gzip members read: fflate reports each member after the first. */
  members = 1
  error: string | null = null

  constructor(private readonly agg: Aggregator, private readonly file: string) {
    this.dec = new DecodeUTF8((text, final) => this.text(text, final))
    this.gz = new Gunzip((data, final) => this.dec.push(data, final))
    this.gz.onmember = () => { this.members++ }
  }

  /** Feeds compressed bytes; `final` on the last chunk. */
  push(chunk: Uint8Array, final: boolean): void {
    this.gz.push(chunk, final)
  }

  private text(text: string, final: boolean): void {
    let s = this.carry + text
    let cut = s.lastIndexOf('\n')
    if (final) {
      cut = s.length
    } else if (cut < 0) {
      this.carry = s
      return
    }
    const block = s.slice(0, cut)
    this.carry = final ? '' : s.slice(cut + 1)
    s = ''
    if (block.length) this.block(block)
  }

  private block(block: string): void {
    const res = Papa.parse<string[]>(block, { delimiter: ',', newline: '\n', skipEmptyLines: false })
    const rows = res.data
    const agg = this.agg
    for (let i = 0; i < rows.length; i++) {
      const f = rows[i]
      this.line++
      agg.lines++
      if (f.length === 1 && (f[0] === '' || f[0] === '\r')) { agg.lines--; continue }
      const last = f[f.length - 1]
      if (last.length && last.charCodeAt(last.length - 1) === 13) f[f.length - 1] = last.slice(0, -1)
      if (isHeader(f)) { agg.headers++; continue }
      const r = parseRecord(f)
      if (typeof r === 'string') agg.bad(this.file, this.line, r, f.join(','))
      else agg.add(r)
    }
  }
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
