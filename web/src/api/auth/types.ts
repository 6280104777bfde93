// Manual §10.2 example 1.
export interface LoginRequest { username: string; password: string }
export interface LoginResponse { access_token: string; token_type: string; expires_in: number }
export type Role = 'admin' | 'viewer'
// PUT /api/auth/password (docs/api/openapi.yaml).
export interface PasswordChange { old_password: string; new_password: string }
export interface PasswordChanged extends LoginResponse { message: string; updated_at: string }
