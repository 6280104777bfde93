import { download, request } from '../request'
import type { Page } from '../devices/types'
import type { Archive, AuditLog, Health, License, Stats } from './types'
export * from './types'

export const getHealth = () => request<Health>('/api/system/health')
export const getStats = () => request<Stats>('/api/system/stats')
export const getLicense = () => request<License>('/api/system/license')
export const listLogs = (page = 1, size = 20) => request<Page<AuditLog>>('/api/system/logs', { query: { page, size } })
export const listArchives = () => request<Page<Archive> | Archive[]>('/api/system/archives')
export const downloadArchive = (date: string, name: string) =>
  download(`/api/system/archives/${encodeURIComponent(date)}/download`, name, { method: 'POST' })
