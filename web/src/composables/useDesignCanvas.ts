// The wall screen's fixed design canvas (1920×1080): laid out once at that
// size and scaled to the window, letterboxed, so a 1080p and a 4K wall show
// the same picture, the 4K one twice as large. Layout sizes (clientWidth,
// ResizeObserver) stay in canvas pixels; only the transform changes.
import { computed, onBeforeUnmount, onMounted, ref } from 'vue'

export const CANVAS_W = 1920
export const CANVAS_H = 1080

/** Scale and offsets that fit a W×H canvas into a w×h window, centred. */
export function fitCanvas(w: number, h: number, W = CANVAS_W, H = CANVAS_H): { scale: number; x: number; y: number } {
  const scale = w > 0 && h > 0 ? Math.min(w / W, h / H) : 1
  return { scale, x: Math.round((w - W * scale) / 2), y: Math.round((h - H * scale) / 2) }
}

export function useDesignCanvas() {
  const win = ref({ w: window.innerWidth, h: window.innerHeight })
  const onResize = () => { win.value = { w: window.innerWidth, h: window.innerHeight } }
  onMounted(() => window.addEventListener('resize', onResize))
  onBeforeUnmount(() => window.removeEventListener('resize', onResize))
  const fit = computed(() => fitCanvas(win.value.w, win.value.h))
  const style = computed(() => ({
    width: `${CANVAS_W}px`, height: `${CANVAS_H}px`,
    transform: `translate(${fit.value.x}px, ${fit.value.y}px) scale(${fit.value.scale})`,
  }))
  return { fit, style }
}
