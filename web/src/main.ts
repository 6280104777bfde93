import { createApp } from 'vue'
import { createPinia } from 'pinia'
// Components come per template (unplugin-vue-components, vite.config.ts);
// the function-style services need their styles here.
import 'element-plus/es/components/message/style/css'
import 'element-plus/es/components/message-box/style/css'
import './styles/base.css'
import App from './App.vue'
import { router } from './router'
import { i18n, savedLocale, setLocale } from './locales'
import { setUnauthorizedHandler } from './api/request'
import { useAuthStore } from './stores/useAuthStore'

async function start(): Promise<void> {
  await setLocale(savedLocale())
  const app = createApp(App)
  app.use(createPinia())
  app.use(i18n)
  app.use(router)
  setUnauthorizedHandler(() => {
    useAuthStore().logout()
    if (router.currentRoute.value.name !== 'login')
      void router.push({ name: 'login', query: { redirect: router.currentRoute.value.fullPath } })
  })
  app.mount('#app')
}

void start()
