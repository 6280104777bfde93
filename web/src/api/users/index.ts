import { request } from '../request'
import type { Page } from '../devices/types'
import type { User, UserInput } from './types'
export * from './types'

const enc = encodeURIComponent
export const listUsers = () => request<Page<User>>('/api/users')
export const createUser = (body: UserInput) => request<User>('/api/users', { method: 'POST', body })
export const updateUser = (username: string, body: UserInput) => request<User>(`/api/users/${enc(username)}`, { method: 'PUT', body })
export const deleteUser = (username: string) => request<void>(`/api/users/${enc(username)}`, { method: 'DELETE' })
