import type { Schemas } from '../schema'

export type Health = Schemas['Health']
export type SystemStats = Schemas['SystemStats']
export type AuditLog = Schemas['AuditLog']
export type Archive = Schemas['Archive']
export interface License { status: string; licensee?: string; expires_at?: string | null; max_devices?: number; machine_code?: string; locked?: boolean; [k: string]: unknown }
