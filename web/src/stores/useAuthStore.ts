// Who is signed in: the JWT (kept in localStorage so the wall screen
// survives a reload), the user name and role read from its claims.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { changePassword as apiChangePassword, login as apiLogin, me, type Role } from '@/api/auth'
import { getToken, setToken } from '@/api/request'

interface Claims { sub?: string; username?: string; role?: Role; exp?: number }

export function decodeClaims(token: string | null): Claims {
  if (!token) return {}
  const part = token.split('.')[1]
  if (!part) return {}
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/')
    const bin = atob(b64 + '==='.slice((b64.length + 3) % 4))
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0))
    return JSON.parse(new TextDecoder().decode(bytes)) as Claims
  } catch {
    return {}
  }
}

export const useAuthStore = defineStore('auth', () => {
  const token = ref<string | null>(getToken())
  const claims = computed(() => decodeClaims(token.value))
  // /api/auth/me is the authority on the role; the token's claims are the
  // fallback until it answers (and for a reload while the API is down).
  const who = ref<{ username: string; role: Role } | null>(JSON.parse(localStorage.getItem('mcs.user') || 'null'))
  const username = computed(() => who.value?.username ?? claims.value.username ?? claims.value.sub ?? '')
  const role = computed<Role>(() => ((who.value?.role ?? claims.value.role) === 'admin' ? 'admin' : 'viewer'))
  const isAdmin = computed(() => role.value === 'admin')
  const loggedIn = computed(() => {
    if (!token.value) return false
    const exp = claims.value.exp
    return !exp || exp * 1000 > Date.now()
  })

  async function login(user: string, password: string): Promise<void> {
    const res = await apiLogin({ username: user, password })
    token.value = res.access_token
    setToken(res.access_token)
    try {
      const m = await me()
      who.value = { username: m.username, role: m.role }
      localStorage.setItem('mcs.user', JSON.stringify(who.value))
    } catch { /* claims fallback */ }
  }

  /** Changes the own password; the old token has ended, so the answer's new one replaces it at once. */
  async function changePassword(oldPassword: string, newPassword: string): Promise<void> {
    const res = await apiChangePassword({ old_password: oldPassword, new_password: newPassword })
    token.value = res.access_token
    setToken(res.access_token)
  }

  function logout(): void {
    token.value = null
    who.value = null
    localStorage.removeItem('mcs.user')
    setToken(null)
  }

  return { token, username, role, isAdmin, loggedIn, login, changePassword, logout }
})
