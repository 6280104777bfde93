import { request } from '../request'
import type { Page } from '../devices/types'
import type { User, UserInput } from './types'
export * from './types'

export const listUsers = () => request<Page<User> | User[]>('/api/users')
export const createUser = (body: UserInput) => request<User>('/api/users', { method: 'POST', body })
export const updateUser = (id: number, body: UserInput) => request<User>(`/api/users/${id}`, { method: 'PUT', body })
export const deleteUser = (id: number) => request<void>(`/api/users/${id}`, { method: 'DELETE' })
