import type { Schemas } from '../schema'
export type User = Schemas['User']
export interface UserInput { username?: string; password?: string; role?: 'admin' | 'viewer'; disabled?: boolean }
