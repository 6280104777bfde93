// Floor-plan coordinates: device positions are stored as percentages of the
// plan (pos_x/pos_y, 0–100) so the same layout fits every screen size.

export function toPercent(clientX: number, clientY: number, rect: { left: number; top: number; width: number; height: number }): { x: number; y: number } {
  const clamp = (v: number) => Math.min(100, Math.max(0, v))
  const round = (v: number) => Math.round(v * 100) / 100
  return {
    x: round(clamp(((clientX - rect.left) / rect.width) * 100)),
    y: round(clamp(((clientY - rect.top) / rect.height) * 100)),
  }
}
