// One ECharts instance bound to an element: created on mount, resized with
// the element, disposed on unmount.
import { onBeforeUnmount, onMounted, shallowRef, type Ref } from 'vue'
import { echarts } from '@/utils/echarts'

type Chart = ReturnType<typeof echarts.init>

export function useChart(el: Ref<HTMLElement | null>, theme?: string) {
  const chart = shallowRef<Chart | null>(null)
  let ro: ResizeObserver | null = null
  let pending: Parameters<Chart['setOption']>[0] | null = null

  onMounted(() => {
    if (!el.value) return
    chart.value = echarts.init(el.value, theme)
    // The e2e specs read the rendered chart (axis extent, label boxes) from
    // here: web/tests/e2e/panel.spec.mjs.
    Object.defineProperty(el.value, '__mcsChart', { value: chart.value, configurable: true })
    ro = new ResizeObserver(() => chart.value?.resize())
    ro.observe(el.value)
    if (pending) chart.value.setOption(pending, true)
  })
  onBeforeUnmount(() => {
    ro?.disconnect()
    chart.value?.dispose()
    chart.value = null
  })

  function setOption(opt: Parameters<Chart['setOption']>[0]): void {
    if (chart.value) chart.value.setOption(opt, true)
    else pending = opt
  }
  return { chart, setOption }
}
