import { request } from '../request'
import type { LoginRequest, LoginResponse, PasswordChange, PasswordChanged } from './types'
export * from './types'

export const login = (body: LoginRequest) => request<LoginResponse>('/api/auth/login', { method: 'POST', body })
export const me = () => request<{ username: string; role: 'admin' | 'viewer'; exp?: number }>('/api/auth/me')
/** Own password (PUT /api/auth/password): ends every session of the user; the answer carries this client's new token. */
export const changePassword = (body: PasswordChange) =>
  request<PasswordChanged>('/api/auth/password', { method: 'PUT', body, timeoutMs: 30000 })
