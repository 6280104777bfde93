// Messages between the analyzer page and its worker.
import type { BadSample, DeviceLimits, DeviceSummary, HeatMap, HourlySeries, MinuteSeries, Totals } from './aggregate'

export type WorkerRequest =
  | { type: 'load'; files: File[]; tz: string }
  | { type: 'series'; sn: string }
  | { type: 'heatmap'; limits: Record<string, DeviceLimits>; fallback: DeviceLimits | null }

export interface FileInfo { name: string; size: number; members: number; error: string | null }

export type WorkerResponse =
  | { type: 'progress'; bytes: number; total: number; rows: number; bad: number }
  | { type: 'loaded'; totals: Totals; devices: DeviceSummary[]; badSamples: BadSample[]; files: FileInfo[]; seconds: number }
  | { type: 'series'; minute: MinuteSeries | null; hourly: HourlySeries | null }
  | { type: 'heatmap'; heat: HeatMap }

/** worker.ts → inflate.ts: a file to decompress; `ack` for each batch parsed. */
export type InflateRequest = { type: 'file'; file: File } | { type: 'ack' }

/** inflate.ts → worker.ts: decompressed batches (transferred), then the end or the error. */
export type InflateResponse =
  | { type: 'data'; data: Uint8Array; final: boolean; read: number }
  | { type: 'end'; members: number }
  | { type: 'error'; message: string }
