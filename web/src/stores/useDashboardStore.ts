// The big screen's live state: every device (position, latest value,
// status) and every alarm a screen must show. Fed by useDashboardFeed
// (WebSocket) and the initial REST loads; read by the screen components.
import { defineStore } from 'pinia'
import { computed, shallowRef, triggerRef } from 'vue'
import type { Device } from '@/api/devices'
import type { Alarm, AlarmEvent } from '@/api/alarms'
import { markerState, type MarkerState } from '@/utils/marker'
import { toSeconds } from '@/utils/format'

export interface ScreenDevice {
  sn: string
  name: string
  location: string
  x: number | null
  y: number | null
  ppm: number | null
  status: string
  activeType: string | null // realtime `alarm_type`: the most severe alarm a screen shows
  activeLevel: number | null
  bat: number | null
  err: number | null
  highLimit: number | null
  highLimit2: number | null
  unit: string
}

export interface ScreenAlarm {
  id: number
  sn: string
  type: string
  category: 'gas' | 'fault' | 'system'
  level: number
  value: number | null
  peak: number | null
  threshold: number | null
  startedAt: number // Unix seconds
  clearedAt: number | null
  ackBy: string | null
  acked: boolean
  count: number
}

/** One device in a `realtime` frame (src/api/feed.c): status is `alarm` while any alarm a screen shows is open or latched. */
export interface RealtimeItem { sn: string; ppm: number | null; status: string; level?: string | number | null; alarm_type?: string | null; bat?: number | null; err?: number | null }

const GAS = new Set(['HIGH', 'LOW', 'OVER_RANGE'])
const FAULT = new Set(['OFFLINE', 'LOW_BAT', 'DEVICE'])

export function categoryOf(type: string, given?: string | null): ScreenAlarm['category'] {
  if (given === 'gas' || given === 'fault' || given === 'system') return given
  return GAS.has(type) ? 'gas' : FAULT.has(type) ? 'fault' : 'system'
}

/** Latching (docs/ALARMS.md): open alarms, and cleared gas alarms nobody acknowledged. */
export function alarmVisible(a: ScreenAlarm): boolean {
  return a.clearedAt === null || (a.category === 'gas' && !a.acked)
}

/**
 * The controller's list order (GB 16808): active unacknowledged, then
 * active acknowledged, then latched (cleared, unacknowledged); newest first
 * within each, so a new alarm is always at the top of its group.
 */
export function alarmGroup(a: ScreenAlarm): number {
  return a.clearedAt !== null ? 2 : a.acked ? 1 : 0
}

export function sortAlarms(list: ScreenAlarm[]): ScreenAlarm[] {
  return [...list].sort((x, y) => alarmGroup(x) - alarmGroup(y) || y.startedAt - x.startedAt || y.id - x.id)
}

/**
 * 首警: the earliest gas alarm of the current episode. An episode lasts while
 * any gas alarm is open or latched (all of them are in `visible`); faults
 * and offline never start one.
 */
export function firstGasAlarm(visible: ScreenAlarm[]): ScreenAlarm | null {
  let first: ScreenAlarm | null = null
  for (const a of visible)
    if (a.category === 'gas' && (!first || a.startedAt < first.startedAt || (a.startedAt === first.startedAt && a.id < first.id))) first = a
  return first
}

/** Devices in the order a tray shows them: the ones needing attention first. */
export const STATE_RANK: Record<MarkerState, number> = { alarm2: 0, alarm1: 1, latched: 2, fault: 3, offline: 4, normal: 5 }

export function fromRecord(r: Alarm): ScreenAlarm {
  const type = String(r.type ?? '')
  const category = categoryOf(type, r.category)
  return {
    id: Number(r.id), sn: String(r.sn), type, category,
    level: Number(r.level) || (type === 'OVER_RANGE' ? 2 : 1),
    value: r.last_value ?? r.value ?? null, peak: r.peak_value ?? null, threshold: r.threshold ?? null,
    startedAt: toSeconds(r.triggered_at ?? null), clearedAt: r.cleared_at ? toSeconds(r.cleared_at) : null,
    ackBy: r.ack_by ?? null, acked: !!r.ack_at, count: Number(r.count) || 1,
  }
}

export const useDashboardStore = defineStore('dashboard', () => {
  const devices = shallowRef(new Map<string, ScreenDevice>())
  const alarms = shallowRef(new Map<number, ScreenAlarm>())
  const lastFrameAt = shallowRef(0)

  function setDevices(list: Device[]): void {
    const m = new Map<string, ScreenDevice>()
    for (const d of list) {
      const old = devices.value.get(d.sn)
      m.set(d.sn, {
        sn: d.sn, name: d.name || d.sn, location: d.location || '',
        x: d.pos_x ?? null, y: d.pos_y ?? null,
        ppm: old?.ppm ?? d.last_ppm ?? null, status: old?.status ?? d.status ?? 'offline',
        activeType: old?.activeType ?? d.alarm_level ?? null, activeLevel: old?.activeLevel ?? null, bat: d.bat ?? null, err: d.last_err ?? null,
        highLimit: d.high_limit ?? null, highLimit2: d.high_limit2 ?? null, unit: d.unit || 'ppm',
      })
    }
    devices.value = m
  }

  /** Fresh registry fields of one device (limits edited since the screen loaded). */
  function mergeDevice(dv: Device): void {
    const d = devices.value.get(dv.sn)
    if (!d) return
    devices.value.set(dv.sn, {
      ...d, name: dv.name || dv.sn, location: dv.location || '', x: dv.pos_x ?? null, y: dv.pos_y ?? null,
      highLimit: dv.high_limit ?? null, highLimit2: dv.high_limit2 ?? null, bat: dv.bat ?? d.bat, err: dv.last_err ?? d.err, unit: dv.unit || d.unit,
    })
    triggerRef(devices)
  }

  function applyRealtime(items: RealtimeItem[], ts?: number): void {
    const m = devices.value
    for (const it of items) {
      let d = m.get(it.sn)
      if (!d) {
        d = { sn: it.sn, name: it.sn, location: '', x: null, y: null, ppm: null, status: 'offline', activeType: null, activeLevel: null, bat: null, err: null, highLimit: null, highLimit2: null, unit: 'ppm' }
        m.set(it.sn, d)
      }
      // A new object per frame: components holding a device (the side panel) see the change.
      m.set(it.sn, {
        ...d,
        ppm: it.ppm ?? null,
        status: it.status,
        activeType: it.alarm_type ?? (typeof it.level === 'string' ? it.level : null),
        activeLevel: typeof it.level === 'number' ? it.level : null,
        bat: it.bat !== undefined ? it.bat : d.bat,
        err: it.err !== undefined ? it.err : d.err,
      })
    }
    lastFrameAt.value = ts ? Math.max(Date.now(), ts * 1000) : Date.now()
    triggerRef(devices)
  }

  function setAlarms(list: Alarm[]): void {
    const m = new Map<number, ScreenAlarm>()
    for (const r of list) m.set(Number(r.id), fromRecord(r))
    alarms.value = m
  }

  /** Applies a live event (raised / updated / cleared / acked). */
  function applyAlarmEvent(e: AlarmEvent): void {
    const id = Number(e.id)
    if (!id) return
    const type = String(e.alarm_type ?? e.type ?? '')
    const old = alarms.value.get(id)
    const state = e.state ?? ''
    const ts = e.ts ?? Date.now() / 1000
    const a: ScreenAlarm = old ?? {
      id, sn: e.sn, type, category: categoryOf(type, e.category), level: 1, value: null, peak: null,
      threshold: null, startedAt: ts, clearedAt: null, ackBy: null, acked: false, count: 1,
    }
    if (e.level) a.level = Math.max(a.level, Number(e.level))
    if (e.value !== undefined) a.value = e.value
    if (e.peak !== undefined) a.peak = e.peak
    if (e.threshold !== undefined) a.threshold = e.threshold
    if (e.count) a.count = e.count
    if (e.event === 'cleared' || state.startsWith('cleared')) a.clearedAt = a.clearedAt ?? ts
    if (e.event === 'acked' || state.endsWith('_ack')) { a.acked = true; a.ackBy = e.ack_by ?? a.ackBy }
    // A rise to level 2 clears the level-1 acknowledgement (docs/ALARMS.md):
    // the alarm is unacknowledged again and sounds.
    else if (state.endsWith('_unack')) { a.acked = false; a.ackBy = null }
    const m = new Map(alarms.value)
    m.set(id, { ...a })
    alarms.value = m
  }

  const visibleAlarms = computed(() => sortAlarms([...alarms.value.values()].filter(alarmVisible)))
  const firstAlarm = computed(() => firstGasAlarm(visibleAlarms.value))

  /** The highest level of an open gas alarm per device. */
  const gasLevel = computed(() => {
    const m = new Map<string, number>()
    for (const a of alarms.value.values())
      if (a.category === 'gas' && a.clearedAt === null) m.set(a.sn, Math.max(m.get(a.sn) ?? 0, a.level))
    return m
  })
  const faulty = computed(() => {
    const s = new Set<string>()
    for (const a of alarms.value.values()) if (a.category === 'fault' && a.clearedAt === null && a.type !== 'OFFLINE') s.add(a.sn)
    return s
  })

  /** Devices with a latched gas alarm (cleared, not acknowledged). */
  const latchedGas = computed(() => {
    const m = new Set<string>()
    for (const a of alarms.value.values()) if (a.category === 'gas' && a.clearedAt !== null && !a.acked) m.add(a.sn)
    return m
  })

  /** Devices with an open OFFLINE alarm (the frame names only one alarm type per device). */
  const offlineAlarm = computed(() => {
    const s = new Set<string>()
    for (const a of alarms.value.values()) if (a.type === 'OFFLINE' && a.clearedAt === null) s.add(a.sn)
    return s
  })

  function isOffline(d: ScreenDevice): boolean {
    return d.status === 'offline' || d.activeType === 'OFFLINE' || offlineAlarm.value.has(d.sn)
  }

  /**
   * Marker colour. Red only for an open gas alarm (from the alarm list, else
   * from the frame's alarm_type when the list does not know the device); a
   * cleared gas alarm that still waits for acknowledgement is `latched` (a
   * red outline, "待确认"), never green, until someone acknowledges it.
   */
  function stateOf(d: ScreenDevice): MarkerState {
    const offline = isOffline(d)
    const lvl = gasLevel.value.get(d.sn)
    if (lvl && !offline) return lvl >= 2 ? 'alarm2' : 'alarm1'
    const frameGas = d.status === 'alarm' && d.activeType !== null && GAS.has(d.activeType) && !latchedGas.value.has(d.sn)
    if (frameGas && !offline) return (d.activeLevel ?? (d.activeType === 'OVER_RANGE' ? 2 : 1)) >= 2 ? 'alarm2' : 'alarm1'
    if (latchedGas.value.has(d.sn) && !offline) return 'latched'
    const fault = faulty.value.has(d.sn) || (d.activeType !== null && FAULT.has(d.activeType) && d.activeType !== 'OFFLINE')
    return markerState({ sn: d.sn, ppm: d.ppm, status: offline ? 'offline' : 'online', bat: d.bat, err: d.err, fault: fault && !offline })
  }

  const counts = computed(() => {
    let online = 0, offline = 0, alarm = 0
    for (const d of devices.value.values()) {
      if (isOffline(d)) offline++
      else online++
      // A latched gas alarm still counts: it has not been dealt with.
      const s = stateOf(d)
      if (s === 'alarm1' || s === 'alarm2' || s === 'latched') alarm++
    }
    return { online, offline, alarm }
  })

  return { devices, alarms, lastFrameAt, setDevices, mergeDevice, applyRealtime, setAlarms, applyAlarmEvent, visibleAlarms, firstAlarm, gasLevel, stateOf, counts }
})
