import { request } from '../request'
import type { AlarmConfig, DashboardConfig, SaveResult, StorageConfig, TestResult } from './types'
export * from './types'

export const getAlarmConfig = () => request<AlarmConfig>('/api/config/alarm')
export const putAlarmConfig = (body: AlarmConfig) => request<SaveResult>('/api/config/alarm', { method: 'PUT', body })
export const testChannel = (channel: 'email' | 'webhook' | 'sms', config?: unknown) =>
  request<TestResult>('/api/config/alarm/test', { method: 'POST', body: { channel, config }, timeoutMs: 60000 })
export const getStorageConfig = () => request<StorageConfig>('/api/config/storage')
export const putStorageConfig = (body: StorageConfig) => request<SaveResult>('/api/config/storage', { method: 'PUT', body })
export const getDashboardConfig = () => request<DashboardConfig>('/api/config/dashboard')
export const putDashboardConfig = (body: DashboardConfig) => request<SaveResult>('/api/config/dashboard', { method: 'PUT', body })
export function uploadBackground(file: File) {
  const form = new FormData()
  form.append('file', file)
  return request<DashboardConfig & { url?: string }>('/api/config/dashboard/bg', { method: 'POST', form, timeoutMs: 60000 })
}
