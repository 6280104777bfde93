// R-API-8 health (manual §8.4), license, audit log, archives.
export interface Component { status: string; [k: string]: unknown }
export interface Health {
  status: string
  components: Record<string, Component>
  metrics?: { devices_online?: number; devices_total?: number; messages_per_minute?: number; alarms_today?: number; [k: string]: unknown }
}
export interface License {
  status: string // valid / expired / invalid / locked
  licensee?: string
  expires_at?: string
  max_devices?: number
  machine_code?: string
  locked?: boolean
}
export interface AuditLog { id: number; time: string; user: string; action: string; target: string; before?: unknown; after?: unknown; ip?: string }
export interface Archive { date: string; file_name: string; size: number; row_count: number; md5: string; status: string }
export interface Stats { [k: string]: unknown }
