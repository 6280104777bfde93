import type { Schemas } from '../schema'

export type AlarmConfig = Schemas['AlarmConfig']
export type StorageConfig = Schemas['StorageConfig']
export type SaveResult = Schemas['Message']
/** GET /api/config/alarm/channels: each channel's delivery state (times also in the plant's zone). */
export type ChannelStates = Schemas['ChannelStates']
export type ChannelState = ChannelStates['channels'][number]
/** Free-form layout owned by this app (openapi DashboardConfig). */
export interface DashboardConfig { background?: string | null; title?: string; [k: string]: unknown }
export interface TestResult { ok?: boolean; message?: string; detail?: string; [k: string]: unknown }
export type Channel = 'email' | 'webhook' | 'sms'
