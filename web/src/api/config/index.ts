import { request } from '../request'
import type { AlarmConfig, Channel, ChannelStates, DashboardConfig, SaveResult, StorageConfig, TestResult } from './types'
export * from './types'

export const getAlarmConfig = () => request<AlarmConfig>('/api/config/alarm')
export const putAlarmConfig = (body: AlarmConfig) => request<SaveResult>('/api/config/alarm', { method: 'PUT', body })
export const getChannelStates = () => request<ChannelStates>('/api/config/alarm/channels')
export const testChannel = (channel: Channel) =>
  request<TestResult>('/api/config/alarm/test', { method: 'POST', body: { channel }, timeoutMs: 60000 })
export const getStorageConfig = () => request<StorageConfig>('/api/config/storage')
export const putStorageConfig = (body: StorageConfig) => request<SaveResult>('/api/config/storage', { method: 'PUT', body })
export const getDashboardConfig = () => request<DashboardConfig>('/api/config/dashboard')
export const putDashboardConfig = (body: DashboardConfig) => request<SaveResult>('/api/config/dashboard', { method: 'PUT', body })
/** The floor plan (JPG/PNG) as the server stores it. */
export const BACKGROUND_URL = '/api/config/dashboard/bg'
/** Uploads the plan as the raw body (image/png or image/jpeg); the server checks magic bytes and size. */
export const uploadBackground = (file: Blob) =>
  request<SaveResult & { url?: string; width?: number; height?: number }>(BACKGROUND_URL, { method: 'POST', blob: file, timeoutMs: 60000 })
/**
 * The stored plan as an object URL (the image needs the bearer token, so no
 * plain <img src>), or null. A version (e.g. after a `config` event) makes
 * the URL new, so no cache hands back the old plan.
 */
export async function fetchBackground(version?: number): Promise<string | null> {
  try {
    const res = await request<Response>(version ? `${BACKGROUND_URL}?v=${version}` : BACKGROUND_URL, { raw: true })
    return URL.createObjectURL(await res.blob())
  } catch {
    return null
  }
}
