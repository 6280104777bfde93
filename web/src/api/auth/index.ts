import { request } from '../request'
import type { LoginRequest, LoginResponse } from './types'
export * from './types'

export const login = (body: LoginRequest) => request<LoginResponse>('/api/auth/login', { method: 'POST', body })
export const me = () => request<{ username: string; role: 'admin' | 'viewer'; exp?: number }>('/api/auth/me')
