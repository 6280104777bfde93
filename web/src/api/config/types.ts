// Manual §10.2 example 4 (alarm channels), plus storage and dashboard.
export interface EmailChannel {
  enabled: boolean
  smtp_host?: string
  smtp_port?: number
  security?: 'ssl' | 'starttls'
  sender?: string
  smtp_user?: string
  smtp_pass?: string
  recipients?: string[] | string
}
export interface WebhookChannel {
  enabled: boolean
  platform?: 'dingtalk' | 'feishu' | 'wecom' | 'custom'
  url?: string
  secret?: string
  mobiles?: string[] | string
  template?: string
}
export interface SmsChannel {
  enabled: boolean
  access_key_id?: string
  access_key_secret?: string
  sign_name?: string
  template_code?: string
  phones?: string[] | string
}
export interface AlarmSettings {
  debounce_minutes: number
  enable_schedule: boolean
  schedule_days: number[]
  schedule_start: string
  schedule_end: string
  level2_override?: boolean
  escalation_enabled?: boolean
  escalation_minutes?: number
}
export interface AlarmConfig { email: EmailChannel; webhook: WebhookChannel; sms: SmsChannel; settings: AlarmSettings }
export interface SaveResult { message: string; updated_at: string }
export interface TestResult { ok?: boolean; message?: string; detail?: string }

export interface StorageConfig {
  endpoint?: string
  bucket?: string
  access_key?: string
  secret_key?: string
  region?: string
  retention_days?: number
}

export interface DashboardConfig { background?: string | null; bg_url?: string | null; width?: number; height?: number; [k: string]: unknown }
