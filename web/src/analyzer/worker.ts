/// <reference lib="webworker" />
// The analyzer's Web Worker: reads, decompresses, parses and aggregates the
// dropped archives off the main thread, posting progress every ~100 ms, and
// then answers queries (summary, one device's series, heat map) from the
// aggregates it keeps.
import { Aggregator } from './aggregate'
import { CsvGzReader, readCsvGz } from './stream'
import type { InflateResponse, WorkerRequest, WorkerResponse } from './protocol'

let agg = new Aggregator()
const post = (m: WorkerResponse) => (self as unknown as Worker).postMessage(m)

// Decompression runs in a worker of its own (inflate.ts) where the browser
// allows workers here; a new load ends the previous one's.
let inflater: Worker | null = null

function newInflater(): Worker | null {
  inflater?.terminate()
  inflater = typeof Worker === 'undefined' ? null : new Worker(new URL('./inflate.ts', import.meta.url), { type: 'module' })
  return inflater
}

/** One file through the inflate worker into the parser; resolves with the reader (members). */
function readVia(w: Worker, f: File, onBytes: (n: number) => void): Promise<CsvGzReader> {
  const reader = new CsvGzReader(agg, f.name)
  let read = 0
  return new Promise((resolve, reject) => {
    w.onmessage = (ev: MessageEvent<InflateResponse>) => {
      const m = ev.data
      if (m.type === 'data') {
        try {
          reader.bytes(m.data, m.final)
        } catch (e) {
          newInflater() // the rest of this file is of no use
          reject(e)
          return
        }
        w.postMessage({ type: 'ack' })
        onBytes(m.read - read)
        read = m.read
      } else if (m.type === 'end') {
        reader.members = m.members
        resolve(reader)
      } else reject(new Error(m.message))
    }
    w.postMessage({ type: 'file', file: f })
  })
}

async function load(files: File[], tz: string): Promise<void> {
  agg = new Aggregator(tz)
  const total = files.reduce((s, f) => s + f.size, 0)
  let done = 0
  let lastPost = 0
  const started = performance.now()
  const fileInfo: { name: string; size: number; members: number; error: string | null }[] = []
  const w = newInflater()
  const onBytes = (n: number) => {
    done += n
    const now = performance.now()
    if (now - lastPost > 100) {
      lastPost = now
      post({ type: 'progress', bytes: done, total, rows: agg.good, bad: agg.totals().bad })
    }
  }
  for (const f of files) {
    try {
      const r = w ? await readVia(w, f, onBytes) : await readCsvGz(f.stream() as ReadableStream<Uint8Array>, agg, f.name, onBytes)
      fileInfo.push({ name: f.name, size: f.size, members: r.members, error: null })
    } catch (e) {
      fileInfo.push({ name: f.name, size: f.size, members: 0, error: String((e as Error).message || e) })
    }
  }
  post({ type: 'progress', bytes: total, total, rows: agg.good, bad: agg.totals().bad })
  post({
    type: 'loaded', totals: agg.totals(), devices: agg.summaries(), badSamples: agg.badSamples,
    files: fileInfo, seconds: (performance.now() - started) / 1000,
  })
}

self.onmessage = (ev: MessageEvent<WorkerRequest>) => {
  const m = ev.data
  if (m.type === 'load') void load(m.files, m.tz)
  else if (m.type === 'series') post({ type: 'series', minute: agg.minuteSeries(m.sn), hourly: agg.hourlySeries(m.sn) })
  else if (m.type === 'heatmap') post({ type: 'heatmap', heat: agg.heatMap(m.limits, m.fallback) })
}
