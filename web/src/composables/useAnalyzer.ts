// The analyzer page's side of the worker: load files, follow progress, ask
// for one device's series or the heat map. The page never holds the rows.
import { ref, shallowRef } from 'vue'
import type { BadSample, DeviceSummary, HeatMap, HourlySeries, MinuteSeries, Totals } from '@/analyzer/aggregate'
import type { FileInfo, WorkerRequest, WorkerResponse } from '@/analyzer/protocol'

export function useAnalyzer() {
  const worker = new Worker(new URL('../analyzer/worker.ts', import.meta.url), { type: 'module' })
  const busy = ref(false)
  const progress = ref({ bytes: 0, total: 0, rows: 0, bad: 0 })
  const totals = shallowRef<Totals | null>(null)
  const devices = shallowRef<DeviceSummary[]>([])
  const badSamples = shallowRef<BadSample[]>([])
  const files = shallowRef<FileInfo[]>([])
  const seconds = ref(0)
  const minute = shallowRef<MinuteSeries | null>(null)
  const hourly = shallowRef<HourlySeries | null>(null)
  const heat = shallowRef<HeatMap | null>(null)

  const send = (m: WorkerRequest) => worker.postMessage(m)

  worker.onmessage = (ev: MessageEvent<WorkerResponse>) => {
    const m = ev.data
    if (m.type === 'progress') progress.value = { bytes: m.bytes, total: m.total, rows: m.rows, bad: m.bad }
    else if (m.type === 'loaded') {
      totals.value = m.totals
      devices.value = m.devices
      badSamples.value = m.badSamples
      files.value = m.files
      seconds.value = m.seconds
      busy.value = false
    } else if (m.type === 'series') {
      minute.value = m.minute
      hourly.value = m.hourly
    } else if (m.type === 'heatmap') heat.value = m.heat
  }

  function load(list: File[]): void {
    if (!list.length) return
    busy.value = true
    totals.value = null
    minute.value = null
    hourly.value = null
    heat.value = null
    progress.value = { bytes: 0, total: list.reduce((s, f) => s + f.size, 0), rows: 0, bad: 0 }
    send({ type: 'load', files: list })
  }
  const series = (sn: string) => send({ type: 'series', sn })
  const heatMap = (level1: number, level2: number) =>
    send({ type: 'heatmap', level1, level2, tzOffsetMin: -new Date().getTimezoneOffset() })
  const dispose = () => worker.terminate()

  return { busy, progress, totals, devices, badSamples, files, seconds, minute, hourly, heat, load, series, heatMap, dispose }
}
