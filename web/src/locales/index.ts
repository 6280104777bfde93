// vue-i18n with lazily loaded message files: Chinese is the default (the
// users are Chinese plant staff, R-UI-4); English is fetched on first switch.
import { createI18n } from 'vue-i18n'

export type AppLocale = 'zh-CN' | 'en'
export const LOCALES: AppLocale[] = ['zh-CN', 'en']
const STORAGE_KEY = 'mcs.locale'

export const i18n = createI18n({
  legacy: false,
  locale: 'zh-CN',
  fallbackLocale: 'zh-CN',
  messages: {},
  missingWarn: false,
  fallbackWarn: false,
})

const loaders: Record<AppLocale, () => Promise<{ default: Record<string, unknown> }>> = {
  'zh-CN': () => import('./zh-CN'),
  en: () => import('./en'),
}

export function savedLocale(): AppLocale {
  const v = typeof localStorage !== 'undefined' ? localStorage.getItem(STORAGE_KEY) : null
  return v === 'en' ? 'en' : 'zh-CN'
}

export function currentLocale(): AppLocale {
  return i18n.global.locale.value as AppLocale
}

export async function setLocale(l: AppLocale): Promise<void> {
  if (!i18n.global.availableLocales.includes(l)) {
    const mod = await loaders[l]()
    i18n.global.setLocaleMessage(l, mod.default as never)
  }
  i18n.global.locale.value = l
  document.documentElement.lang = l
  localStorage.setItem(STORAGE_KEY, l)
}
