// Manual §10.2 examples 2 and 3, with the fields the device pages need.
export type DeviceStatus = 'online' | 'offline' | 'alarm'

export interface Device {
  sn: string
  name: string
  location: string
  status: DeviceStatus
  level?: number | null
  last_ppm: number | null
  last_seen: string | null
  high_limit: number | null
  high2_limit?: number | null
  low_limit: number | null
  k?: number
  b?: number
  t_ref?: number
  t_comp?: number
  pos_x?: number | null
  pos_y?: number | null
  last_v_raw?: number | null
  last_temp?: number | null
  bat?: number | null
  rssi?: number | null
  err?: number | null
  loss_pct?: number | null
  ver?: string | null
  debug_until?: string | null
  debug_left_s?: number | null
}

export interface Page<T> { total: number; page: number; size: number; data: T[] }

export interface DeviceQuery { page?: number; size?: number; status?: string; q?: string }

export type DeviceInput = Partial<Pick<Device, 'sn' | 'name' | 'location' | 'high_limit' | 'high2_limit' | 'low_limit' | 'k' | 'b' | 't_ref' | 't_comp'>>

export interface HistoryPoint { ts: string; ppm: number | null; temp?: number | null; min?: number | null; max?: number | null }
export interface History { sn: string; start: string; end: string; interval: string; points: HistoryPoint[] }

export interface Realtime { sn: string; ppm: number | null; v_raw?: number | null; temp?: number | null; status: DeviceStatus; ts?: number | string }

export type Command =
  | { cmd: 'debug'; duration: number }
  | { cmd: 'calib'; k: number; b: number; t_comp: number; t_ref?: number }
  | { cmd: 'reboot'; delay: number }
  | { cmd: 'ota'; url: string; md5: string }

export type Positions = Record<string, { x: number; y: number }>
