import { describe, expect, it } from 'vitest'
import { createI18n } from 'vue-i18n'
import zh from './zh-CN'
import en from './en'

type Tree = { [k: string]: string | Tree }
function keys(t: Tree, prefix = ''): string[] {
  return Object.entries(t).flatMap(([k, v]) => (typeof v === 'string' ? [prefix + k] : keys(v, `${prefix}${k}.`)))
}

describe('locale files', () => {
  it('zh-CN and en have the same keys', () => {
    expect(keys(en as Tree).sort()).toEqual(keys(zh as Tree).sort())
  })
  it('every message compiles (no stray @ | { } syntax)', () => {
    const errors: string[] = []
    const i18n = createI18n({
      legacy: false, locale: 'zh-CN', messages: { 'zh-CN': zh, en } as never, missingWarn: false, fallbackWarn: false,
      messageCompiler: undefined,
    })
    for (const l of ['zh-CN', 'en']) {
      i18n.global.locale.value = l as never
      for (const k of keys(zh as Tree)) {
        try {
          const out = i18n.global.t(k, { n: 1, s: 1, d: '1', e: 'x', v: 1, t: 1, ppm: 1, left: '1', sn: 'x', name: 'x', code: 1, status: 1, detail: 'x' })
          if (out === k) errors.push(`${l}:${k} missing`)
        } catch (e) {
          errors.push(`${l}:${k} ${(e as Error).message}`)
        }
      }
    }
    expect(errors).toEqual([])
  })
})
