import { request } from '../request'
import type { Command, CommandResult, Device, DeviceCommand, DeviceInput, DeviceQuery, History, Page, Positions, Realtime } from './types'
export * from './types'

const enc = encodeURIComponent
export const listDevices = (q: DeviceQuery = {}) => request<Page<Device>>('/api/devices', { query: { ...q } })
export const getDevice = (sn: string) => request<Device>(`/api/devices/${enc(sn)}`)
export const createDevice = (body: DeviceInput) => request<Device>('/api/devices', { method: 'POST', body })
export const updateDevice = (sn: string, body: DeviceInput) => request<Device>(`/api/devices/${enc(sn)}`, { method: 'PUT', body })
export const deleteDevice = (sn: string) => request<void>(`/api/devices/${enc(sn)}`, { method: 'DELETE' })
export const getRealtime = (sn: string) => request<Realtime>(`/api/devices/${enc(sn)}/realtime`)
export const getHistory = (sn: string, q: { start: string; end: string; interval: string; page?: number; size?: number }) =>
  request<History>(`/api/devices/${enc(sn)}/history`, { query: q })
export const sendCommand = (sn: string, body: Command) => request<CommandResult>(`/api/devices/${enc(sn)}/command`, { method: 'POST', body })
export const listCommands = (sn: string, q: { page?: number; size?: number } = {}) =>
  request<Page<DeviceCommand>>(`/api/devices/${enc(sn)}/commands`, { query: { ...q } })
export const savePositions = (body: Positions) => request<{ message?: string; updated?: number }>('/api/devices/positions', { method: 'POST', body })

/** All devices (the list pages at most 200 a request; the screens want every one). */
export async function listAllDevices(): Promise<Device[]> {
  const size = 200
  const first = await listDevices({ page: 1, size })
  const out = [...first.data]
  for (let p = 2; (p - 1) * size < first.total && p <= 100; p++) out.push(...(await listDevices({ page: p, size })).data)
  return out
}
