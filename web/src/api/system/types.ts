import type { Schemas } from '../schema'

export type Health = Schemas['Health']
export type SystemStats = Schemas['SystemStats']
export type AuditLog = Schemas['AuditLog']
export type Archive = Schemas['Archive']
/** GET /api/system/license (docs/api/openapi.yaml, schema License). */
export interface License {
  status: 'valid' | 'grace' | 'locked' | 'missing'
  code: number | null
  reason: string
  license_id: string | null
  license_key: string | null
  customer: string | null
  max_devices: number | null
  issued: string | null
  expires: string | null
  devices_in_use: number | null
  evaluated_at: number
  last_check: number | null
  grace_left_s: number | null
  warning: boolean
  clock_turned_back: boolean
}
