// alarm_logs rows (docs/api/openapi.yaml) and the live events of
// docs/ALARMS.md: levels 1/2 for gas, category gas vs fault.
import type { Schemas } from '../schema'

export type AlarmType = 'HIGH' | 'LOW' | 'OFFLINE' | 'LOW_BAT' | 'DEVICE' | 'OVER_RANGE' | 'UNKNOWN_DEVICE' | 'NOTIFY_FAILED'
export type Alarm = Schemas['Alarm'] & { level?: number | null; category?: string | null; name?: string | null }
export type AlarmStats = Schemas['AlarmStats']

/** `alarm` frame data on /ws/dashboard (Redis mcs:alarm, docs/ALARMS.md). */
export interface AlarmEvent {
  event: 'raised' | 'updated' | 'cleared' | 'acked'
  id: number
  sn: string
  alarm_type?: string
  type?: string
  category?: string
  level?: number
  value?: number | null
  peak?: number | null
  threshold?: number | null
  state?: string
  count?: number
  ack_by?: string | null
  ts?: number
}

export interface AlarmQuery {
  page?: number
  size?: number
  state?: string
  sn?: string
  type?: string
  level?: number | string
  start?: string
  end?: string
}
