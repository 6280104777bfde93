// Shapes from docs/api/openapi.yaml (generated), manual §10.2 examples 2–3.
import type { Schemas } from '../schema'

export type DeviceStatus = 'online' | 'offline' | 'alarm'
/** The API's Device, plus the level-2 limit of the alarms migration (010) where the server sends it. */
export type Device = Schemas['Device'] & { high_limit2?: number | null; low_limit2?: number | null }
export type DeviceInput = Schemas['DeviceUpdate'] & { sn?: string; high_limit2?: number | null }
export type History = Schemas['History']
export type HistoryPoint = History['points'][number]
export type Realtime = Schemas['Realtime']
export type Command = Schemas['Command']
export type CommandResult = Schemas['CommandResult']
/** One command and what became of it (GET /api/devices/{sn}/commands, issue #20). */
export type DeviceCommand = Schemas['DeviceCommand']

export interface Page<T> { total: number; page: number; size: number; data: T[] }
export interface DeviceQuery { page?: number; size?: number; status?: string; search?: string }
/** POST /api/devices/positions body: percentages of the plan (0–100), null = not placed. */
export interface Positions { positions: { sn: string; pos_x: number | null; pos_y: number | null }[] }
