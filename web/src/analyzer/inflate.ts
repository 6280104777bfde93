/// <reference lib="webworker" />
// The analyzer's second worker: decompresses one csv.gz after another with
// fflate's Gunzip (every member of a multi-member file) while worker.ts
// parses the previous batch, so on two cores inflating (a quarter of the
// work) runs beside parsing instead of before it. Batches of ~1 MB are
// transferred, not copied; at most IN_FLIGHT are unacknowledged, so a slow
// parser holds back the reading instead of queueing the whole day in memory.
import { Gunzip } from 'fflate'
import type { InflateRequest, InflateResponse } from './protocol'

const BATCH = 1 << 20
const IN_FLIGHT = 4

const post = (m: InflateResponse, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(m, transfer)
let inFlight = 0
let wake: (() => void) | null = null

async function inflate(file: File): Promise<void> {
  let parts: Uint8Array[] = []
  let size = 0
  let members = 1
  let read = 0
  const flush = (final: boolean) => {
    const out = new Uint8Array(size)
    let o = 0
    for (const p of parts) { out.set(p, o); o += p.length }
    parts = []
    size = 0
    inFlight++
    post({ type: 'data', data: out, final, read }, [out.buffer])
  }
  const gz = new Gunzip((data, final) => {
    // fflate may reuse its buffer: keep a copy until the batch goes.
    parts.push(data.slice())
    size += data.length
    if (size >= BATCH && !final) flush(false)
  })
  gz.onmember = () => { members++ }
  try {
    const r = (file.stream() as ReadableStream<Uint8Array>).getReader()
    for (;;) {
      while (inFlight >= IN_FLIGHT) await new Promise<void>((res) => { wake = res })
      const { value, done } = await r.read()
      if (done) break
      read += value.byteLength
      gz.push(value, false)
    }
    gz.push(new Uint8Array(0), true)
    flush(true)
    post({ type: 'end', members })
  } catch (e) {
    post({ type: 'error', message: String((e as Error).message || e) })
  }
}

self.onmessage = (ev: MessageEvent<InflateRequest>) => {
  const m = ev.data
  if (m.type === 'ack') {
    inFlight--
    const w = wake
    wake = null
    w?.()
  } else if (m.type === 'file') {
    inFlight = 0
    void inflate(m.file)
  }
}
