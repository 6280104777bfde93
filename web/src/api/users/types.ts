import type { Role } from '../auth/types'
export interface User { id: number; username: string; role: Role; created_at?: string }
export interface UserInput { username?: string; password?: string; role?: Role }
