// App-wide UI state: the language (Chinese by default, R-UI-4).
import { defineStore } from 'pinia'
import { ref } from 'vue'
import { currentLocale, setLocale, type AppLocale } from '@/locales'

export const useAppStore = defineStore('app', () => {
  const locale = ref<AppLocale>(currentLocale())
  async function switchLocale(l?: AppLocale): Promise<void> {
    const next = l ?? (locale.value === 'zh-CN' ? 'en' : 'zh-CN')
    await setLocale(next)
    locale.value = next
  }
  return { locale, switchLocale }
})
