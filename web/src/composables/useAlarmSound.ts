// The audible alarm (GB 16808 practice): a tone pattern per level — level 1
// a slow single beep, level 2 a fast two-tone siren; "消音" silences the
// alarms sounding now, and any new alarm (or one rising to level 2) sounds
// again. WebAudio oscillators: no sound files to load.
import { computed, onBeforeUnmount, ref, watch, type Ref } from 'vue'

export interface SoundingAlarm { id: number; level: number }

const PATTERNS: Record<number, { tones: [number, number][]; period: number }> = {
  1: { tones: [[880, 0.35]], period: 1.5 }, // [Hz, seconds], then silence to the period
  2: { tones: [[1250, 0.18], [950, 0.18], [1250, 0.18], [950, 0.18]], period: 0.9 },
}

export function silenceKey(a: SoundingAlarm): string {
  return `${a.id}:${a.level}`
}

/** The level that must sound: highest level among alarms not silenced, 0 for none. */
export function soundLevel(active: SoundingAlarm[], silenced: Set<string>): number {
  let lvl = 0
  for (const a of active) if (!silenced.has(silenceKey(a))) lvl = Math.max(lvl, a.level >= 2 ? 2 : 1)
  return lvl
}

/** Alarm ids per `silence` frame: mcs-api takes up to 1,000 ids in a frame
 * of at most 4 KiB; 200 ids of any realistic size stay well inside both. */
export const SILENCE_CHUNK = 200

/** The `silence` frames for the record of one 消音 (issue #9): no frame for
 * no ids. The server takes the user from the token, so none is sent. */
export function silenceFrames(ids: number[], chunk = SILENCE_CHUNK): { type: 'silence'; ids: number[] }[] {
  const out: { type: 'silence'; ids: number[] }[] = []
  for (let i = 0; i < ids.length; i += chunk) out.push({ type: 'silence', ids: ids.slice(i, i + chunk) })
  return out
}

const STORE_KEY = 'mcs.silenced'

export function useAlarmSound(active: Ref<SoundingAlarm[]>) {
  // Kept for the browser session: a reload of the wall screen does not undo 消音.
  const silenced = ref(new Set<string>(JSON.parse(sessionStorage.getItem(STORE_KEY) || '[]') as string[]))
  watch(silenced, (s) => sessionStorage.setItem(STORE_KEY, JSON.stringify([...s])))
  const ctxState = ref<'none' | 'suspended' | 'running'>('none')
  const silencedAt = ref<number | null>(null)
  let ctx: AudioContext | null = null
  let timer: ReturnType<typeof setTimeout> | null = null

  const level = computed(() => soundLevel(active.value, silenced.value))
  /** True only while the AudioContext runs: what the screen may claim it plays. */
  const canPlay = computed(() => ctxState.value === 'running')

  function ensureCtx(): AudioContext | null {
    if (!ctx) {
      try {
        ctx = new AudioContext()
        ctx.onstatechange = () => { ctxState.value = ctx!.state === 'running' ? 'running' : 'suspended' }
      } catch {
        return null
      }
    }
    ctxState.value = ctx.state === 'running' ? 'running' : 'suspended'
    return ctx
  }

  /**
   * Browsers start audio only after a user gesture (Chromium's default
   * autoplay policy): without one, resume() stays pending and the context
   * suspended. Called at start and on every click until it runs; a pending
   * resume is not awaited for ever.
   */
  async function unlock(): Promise<void> {
    const c = ensureCtx()
    if (c && c.state !== 'running') {
      await Promise.race([c.resume().catch(() => {}), new Promise((r) => setTimeout(r, 500))])
    }
    ctxState.value = c && c.state === 'running' ? 'running' : 'suspended'
  }

  function beep(c: AudioContext, at: number, hz: number, dur: number, loud: number): void {
    const osc = c.createOscillator()
    const gain = c.createGain()
    osc.type = 'square'
    osc.frequency.value = hz
    gain.gain.setValueAtTime(0, at)
    gain.gain.linearRampToValueAtTime(loud, at + 0.01)
    gain.gain.setValueAtTime(loud, at + dur - 0.02)
    gain.gain.linearRampToValueAtTime(0, at + dur)
    osc.connect(gain).connect(c.destination)
    osc.start(at)
    osc.stop(at + dur + 0.01)
  }

  function cycle(): void {
    timer = null
    const lvl = level.value
    if (!lvl) return
    const c = ensureCtx()
    const p = PATTERNS[lvl]
    if (c && c.state === 'running') {
      let at = c.currentTime + 0.02
      for (const [hz, dur] of p.tones) { beep(c, at, hz, dur, lvl === 2 ? 0.25 : 0.18); at += dur }
    }
    timer = setTimeout(cycle, p.period * 1000)
  }

  watch(level, (lvl, old) => {
    if (lvl && !old && !timer) cycle()
    if (!lvl && timer) { clearTimeout(timer); timer = null }
  }, { immediate: true })

  // Forget silenced keys of alarms that are gone, so the set stays small.
  watch(active, (list) => {
    const keep = new Set(list.map(silenceKey))
    const next = new Set([...silenced.value].filter((k) => keep.has(k)))
    if (next.size !== silenced.value.size) silenced.value = next
  })

  /** Silences what sounds now; returns the alarm ids silenced (for the record). */
  function silence(): number[] {
    const next = new Set(silenced.value)
    const ids: number[] = []
    for (const a of active.value) if (!next.has(silenceKey(a))) { next.add(silenceKey(a)); ids.push(a.id) }
    silenced.value = next
    silencedAt.value = Date.now()
    return ids
  }

  onBeforeUnmount(() => {
    if (timer) clearTimeout(timer)
    void ctx?.close()
  })

  return { level, ctxState, canPlay, silenced, silencedAt, silence, unlock }
}
