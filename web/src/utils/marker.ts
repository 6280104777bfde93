// Which colour a device's marker shows (R-UI-2, issue #9): red for a gas
// alarm (level 2 distinct from level 1), yellow for a fault (device error
// code that raises a device alarm, low battery), grey offline, green normal.
// `latched`: a gas alarm that has cleared but nobody acknowledged (the store decides it).
export type MarkerState = 'normal' | 'alarm1' | 'alarm2' | 'latched' | 'fault' | 'offline'

export interface LiveDevice {
  sn: string
  ppm: number | null
  status: string // online / offline / alarm
  level?: number | null
  bat?: number | null
  err?: number | null
  fault?: boolean
}

const FAULT_ERR = new Set([1, 2, 3, 10, 11])

export function markerState(d: LiveDevice): MarkerState {
  if (d.status === 'alarm') return (d.level ?? 1) >= 2 ? 'alarm2' : 'alarm1'
  if (d.status === 'offline') return d.fault ? 'fault' : 'offline'
  if (d.fault || (d.err && FAULT_ERR.has(d.err)) || (d.bat !== null && d.bat !== undefined && d.bat < 20)) return 'fault'
  return 'normal'
}

export function counts(list: Iterable<LiveDevice>): { online: number; offline: number; alarm: number } {
  let online = 0, offline = 0, alarm = 0
  for (const d of list) {
    if (d.status === 'offline') offline++
    else {
      online++
      if (d.status === 'alarm') alarm++
    }
  }
  return { online, offline, alarm }
}
