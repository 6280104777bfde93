import { download, request } from '../request'
import type { Page } from '../devices/types'
import type { Alarm, AlarmQuery, AlarmStats } from './types'
export * from './types'

export const listAlarms = (q: AlarmQuery = {}) => request<Page<Alarm>>('/api/alarms', { query: { ...q } })
export const getAlarm = (id: number) => request<Alarm>(`/api/alarms/${id}`)
export const ackAlarm = (id: number, note: string) => request<Alarm>(`/api/alarms/${id}/ack`, { method: 'POST', body: { note } })
export const alarmStats = () => request<AlarmStats>('/api/alarms/stats')
export const exportAlarms = (q: AlarmQuery) => download('/api/alarms/export', 'alarms.xlsx', { query: { ...q } })
