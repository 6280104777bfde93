import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { useAuthStore } from '@/stores/useAuthStore'
import { homeOf } from './landing'

// meta.public: no sign-in (the analyzer works on files the user already has);
// meta.admin: administrators only — a viewer sees the big screen only.
const routes: RouteRecordRaw[] = [
  { path: '/login', name: 'login', component: () => import('@/views/LoginView.vue'), meta: { public: true } },
  { path: '/dashboard', name: 'dashboard', component: () => import('@/views/DashboardView.vue') },
  { path: '/analyzer', name: 'analyzer', component: () => import('@/views/AnalyzerView.vue'), meta: { public: true } },
  {
    path: '/admin',
    component: () => import('@/views/admin/AdminLayout.vue'),
    meta: { admin: true },
    children: [
      { path: '', redirect: '/admin/overview' },
      { path: 'overview', name: 'overview', component: () => import('@/views/admin/OverviewView.vue') },
      { path: 'devices', name: 'devices', component: () => import('@/views/admin/DevicesView.vue') },
      { path: 'alarm-config', name: 'alarmConfig', component: () => import('@/views/admin/AlarmConfigView.vue') },
      { path: 'alarms', name: 'alarmRecords', component: () => import('@/views/admin/AlarmRecordsView.vue') },
      { path: 'query', name: 'dataQuery', component: () => import('@/views/admin/DataQueryView.vue') },
      { path: 'dashboard-config', name: 'dashboardConfig', component: () => import('@/views/admin/DashboardConfigView.vue') },
      { path: 'users', name: 'users', component: () => import('@/views/admin/UsersView.vue') },
      { path: 'system', name: 'system', component: () => import('@/views/admin/SystemView.vue') },
    ],
  },
  // Signed out: the login page without a redirect, so the sign-in lands by role
  // (landing.ts) instead of on the screen this guess would have picked.
  { path: '/', redirect: () => { const a = useAuthStore(); return a.loggedIn ? homeOf(a.isAdmin) : '/login' } },
  { path: '/:rest(.*)*', redirect: '/' },
]

export const router = createRouter({ history: createWebHistory(), routes })

router.beforeEach((to) => {
  const auth = useAuthStore()
  if (to.meta.public) return true
  if (!auth.loggedIn) return { name: 'login', query: { redirect: to.fullPath } }
  if (to.matched.some((r) => r.meta.admin) && !auth.isAdmin) return { name: 'dashboard' }
  return true
})
