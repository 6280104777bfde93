import { download, request } from '../request'
import type { Page } from '../devices/types'
import type { Archive, AuditLog, Health, License, SystemStats } from './types'
export * from './types'

export const getHealth = () => request<Health>('/api/system/health')
export const getStats = () => request<SystemStats>('/api/system/stats')
export const getLicense = () => request<License>('/api/system/license')
/** Installs a license file (admin): the file itself is the body. */
export const installLicense = (file: Blob) => request<License>('/api/system/license', { method: 'POST', blob: file })
export const listLogs = (page = 1, size = 20) => request<Page<AuditLog>>('/api/system/logs', { query: { page, size } })
export const listArchives = (page = 1, size = 50) => request<Page<Archive>>('/api/system/archives', { query: { page, size } })
export const downloadArchive = (date: string, name: string) =>
  download(`/api/system/archives/${encodeURIComponent(date)}/download`, name, { method: 'POST' })
/** An archive's bytes as a File, for the analyzer (no save dialog). */
export async function fetchArchive(date: string, name: string): Promise<File> {
  const res = await request<Response>(`/api/system/archives/${encodeURIComponent(date)}/download`, { method: 'POST', raw: true, timeoutMs: 300000 })
  return new File([await res.blob()], name, { type: 'application/gzip' })
}
