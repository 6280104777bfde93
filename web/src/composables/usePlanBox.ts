// Fits the floor plan into its area keeping the image's aspect ratio, so
// that marker percentages mean the same spot on every screen size.
import { onBeforeUnmount, onMounted, ref, watch, type Ref } from 'vue'

export function usePlanBox(area: Ref<HTMLElement | null>, imgUrl: Ref<string | null>) {
  const ratio = ref(16 / 9)
  const box = ref({ width: 0, height: 0 })
  let ro: ResizeObserver | null = null

  function fit(): void {
    const el = area.value
    if (!el) return
    const w = el.clientWidth, h = el.clientHeight
    if (w / h > ratio.value) box.value = { width: Math.round(h * ratio.value), height: h }
    else box.value = { width: w, height: Math.round(w / ratio.value) }
  }

  watch(imgUrl, (u) => {
    if (!u) { ratio.value = 16 / 9; fit(); return }
    const img = new Image()
    img.onload = () => { if (img.naturalWidth && img.naturalHeight) ratio.value = img.naturalWidth / img.naturalHeight; fit() }
    img.src = u
  }, { immediate: true })

  onMounted(() => {
    ro = new ResizeObserver(fit)
    if (area.value) ro.observe(area.value)
    fit()
  })
  onBeforeUnmount(() => ro?.disconnect())

  return { box, ratio }
}
