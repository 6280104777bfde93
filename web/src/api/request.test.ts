import { beforeAll, describe, expect, it } from 'vitest'
import { i18n } from '@/locales'
import zh from '@/locales/zh-CN'
import en from '@/locales/en'
import { ApiError, errorMessage, errorText } from './request'

describe('request wrapper error words', () => {
  beforeAll(() => {
    i18n.global.setLocaleMessage('zh-CN', zh as never)
    i18n.global.setLocaleMessage('en', en as never)
  })
  it('turns business codes into the user language, else the status', () => {
    i18n.global.locale.value = 'zh-CN'
    expect(errorText(404, 40001, 'device not found')).toBe('设备不存在')
    expect(errorText(409, 40003)).toBe('设备离线，无法下发命令')
    expect(errorText(429, 90005)).toBe('请求过于频繁，请稍后再试')
    expect(errorText(500, 0)).toBe('服务器内部错误')
    i18n.global.locale.value = 'en'
    expect(errorText(401, 10001)).toBe('Wrong user name or password')
    expect(errorText(418, 0)).toBe('Request failed (HTTP 418)')
    // a code the app has no words for keeps the server's message
    expect(errorText(400, 90001, 'size must be 1..200')).toBe('size must be 1..200')
  })
})

describe('errorMessage', () => {
  it('puts the server reason beside the words of a validation error', () => {
    i18n.global.locale.value = 'zh-CN'
    const e = new ApiError(400, 90001, errorText(400, 90001, '请求参数错误'), 'sn: 1..32 of A-Z a-z 0-9 _ -')
    expect(errorMessage(e)).toBe('请求参数错误: sn: 1..32 of A-Z a-z 0-9 _ -')
    // no detail, or a detail the words already carry: the words alone
    expect(errorMessage(new ApiError(404, 40001, '设备不存在'))).toBe('设备不存在')
    expect(errorMessage(new ApiError(400, 90001, 'size must be 1..200', 'size must be 1..200'))).toBe('size must be 1..200')
    expect(errorMessage(new Error('boom'))).toBe('boom')
  })
})
