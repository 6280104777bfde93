// The analyzer page's side of the worker: the plant's time zone and the
// devices' limits (from the server when signed in), load files, follow
// progress, ask for one device's series or the heat map. The page never
// holds the rows.
import { ref, shallowRef } from 'vue'
import type { BadSample, DeviceLimits, DeviceSummary, HeatMap, HourlySeries, MinuteSeries, Totals } from '@/analyzer/aggregate'
import type { FileInfo, WorkerRequest, WorkerResponse } from '@/analyzer/protocol'
import { DEFAULT_TZ, validZone } from '@/analyzer/zone'
import { getAlarmConfig } from '@/api/config'
import { listAllDevices } from '@/api/devices'

/** Where the time zone the page uses came from. */
export type TzSource = 'server' | 'default'

/**
 * The plant's zone: the alarm settings' `timezone` (GET /api/config/alarm,
 * admins) when signed in, else Asia/Shanghai — never the browser's zone,
 * since the archives' days are the plant's.
 */
export async function plantZone(admin: boolean): Promise<{ tz: string; source: TzSource }> {
  if (admin) {
    try {
      const tz = (await getAlarmConfig()).settings?.timezone
      if (tz && validZone(tz)) return { tz, source: 'server' }
    } catch {
      // Offline or refused: the default below, shown as such on the page.
    }
  }
  return { tz: DEFAULT_TZ, source: 'default' }
}

/** Each device's level 1 / level 2 HIGH limits from GET /api/devices; {} when that fails. */
export async function deviceLimits(): Promise<Record<string, DeviceLimits>> {
  const out: Record<string, DeviceLimits> = {}
  for (const d of await listAllDevices()) out[d.sn] = { l1: d.high_limit ?? null, l2: d.high_limit2 ?? null }
  return out
}

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

  function load(list: File[], tz: string): void {
    if (!list.length) return
    busy.value = true
    totals.value = null
    minute.value = null
    hourly.value = null
    heat.value = null
    progress.value = { bytes: 0, total: list.reduce((s, f) => s + f.size, 0), rows: 0, bad: 0 }
    send({ type: 'load', files: list, tz })
  }
  const series = (sn: string) => send({ type: 'series', sn })
  const heatMap = (limits: Record<string, DeviceLimits>, fallback: DeviceLimits | null) =>
    send({ type: 'heatmap', limits, fallback })
  const dispose = () => worker.terminate()

  return { busy, progress, totals, devices, badSamples, files, seconds, minute, hourly, heat, load, series, heatMap, dispose }
}
