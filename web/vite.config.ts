import { defineConfig } from 'vite'
import { fileURLToPath, URL } from 'node:url'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'

// The API server (mcs-api) serves dist/ itself; during `npm run dev` the
// proxy sends /api and /ws there (MCS_API_URL, default 127.0.0.1:8080).
const api = process.env.MCS_API_URL || 'http://127.0.0.1:8080'

export default defineConfig({
  // Element Plus components (and their CSS) are imported where a template uses
  // them, so the big screen does not load the admin's tables and forms.
  plugins: [vue(), Components({ resolvers: [ElementPlusResolver({ importStyle: 'css' })], dts: false })],
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  base: '/',
  worker: { format: 'es' },
  build: {
    outDir: 'dist',
    manifest: true, // dist/.vite/manifest.json: the bench sums the big screen's first load from it
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      output: {
        manualChunks(id: string) {
          if (id.includes('node_modules/echarts') || id.includes('node_modules/zrender')) return 'echarts'
          return undefined
        },
      },
    },
  },
  server: {
    proxy: {
      '/api': api,
      '/ws': { target: api.replace(/^http/, 'ws'), ws: true },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
})
