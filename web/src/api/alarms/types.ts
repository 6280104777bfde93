// Alarm records (alarm_logs, R-AL-3); levels 1/2 for gas, faults have none.
export type AlarmType = 'HIGH' | 'LOW' | 'OFFLINE' | 'LOW_BAT' | 'DEVICE' | 'OVER_RANGE' | 'UNKNOWN_DEVICE'
export type AlarmState = 'active' | 'cleared'

export interface Alarm {
  id: number
  sn: string
  name?: string
  type: AlarmType
  level?: number | null
  state: AlarmState
  value?: number | null
  peak?: number | null
  threshold?: number | null
  count?: number
  started_at: string
  cleared_at?: string | null
  ack_at?: string | null
  ack_by?: string | null
  ack_note?: string | null
}

export interface AlarmQuery {
  page?: number
  size?: number
  state?: string
  sn?: string
  type?: string
  level?: number | string
  acked?: string
  start?: string
  end?: string
}

export interface AlarmStats { active: number; today: number; total?: number }
