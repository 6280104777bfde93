import { beforeEach, describe, expect, it } from 'vitest'
import { createPinia, setActivePinia } from 'pinia'
import { alarmVisible, useDashboardStore } from './useDashboardStore'

describe('dashboard store', () => {
  beforeEach(() => setActivePinia(createPinia()))

  it('colours a device by its open gas alarm level and latches gas alarms', () => {
    const s = useDashboardStore()
    s.setDevices([{ sn: 'A1', name: 'n', location: '', status: 'online', last_ppm: 1, last_seen: null, high_limit: 100, low_limit: null, pos_x: 10, pos_y: 20 }])
    s.applyRealtime([{ sn: 'A1', ppm: 150, status: 'alarm', level: 1, alarm_type: 'HIGH' }])
    expect(s.stateOf(s.devices.get('A1')!)).toBe('alarm1')
    s.applyAlarmEvent({ event: 'raised', id: 7, sn: 'A1', alarm_type: 'HIGH', category: 'gas', level: 1, state: 'active_unack', ts: 100 })
    s.applyAlarmEvent({ event: 'updated', id: 7, sn: 'A1', alarm_type: 'HIGH', level: 2, state: 'active_unack', ts: 110 })
    expect(s.stateOf(s.devices.get('A1')!)).toBe('alarm2')
    expect(s.counts.alarm).toBe(1)
    s.applyAlarmEvent({ event: 'cleared', id: 7, sn: 'A1', alarm_type: 'HIGH', state: 'cleared_unack', ts: 120 })
    // the feed still says alarm (latched, unacknowledged) but the gas is gone:
    // the marker is `latched` (red outline, 待确认), not green, and still counted
    s.applyRealtime([{ sn: 'A1', ppm: 5, status: 'alarm', level: 2, alarm_type: 'HIGH' }])
    expect(s.stateOf(s.devices.get('A1')!)).toBe('latched')
    expect(s.counts.alarm).toBe(1)
    expect(s.visibleAlarms.length).toBe(1) // latched until acknowledged
    s.applyAlarmEvent({ event: 'acked', id: 7, sn: 'A1', alarm_type: 'HIGH', state: 'cleared_ack', ack_by: 'admin', ts: 130 })
    expect(s.visibleAlarms.length).toBe(0)
    s.applyRealtime([{ sn: 'A1', ppm: 5, status: 'online', level: null }])
    expect(s.stateOf(s.devices.get('A1')!)).toBe('normal')
    expect(s.counts.alarm).toBe(0)
  })

  it('an acknowledged level-1 alarm rising to level 2 is unacknowledged again', () => {
    const s = useDashboardStore()
    s.applyAlarmEvent({ event: 'raised', id: 30, sn: 'L', alarm_type: 'HIGH', category: 'gas', level: 1, state: 'active_unack', ts: 100 })
    s.applyAlarmEvent({ event: 'acked', id: 30, sn: 'L', alarm_type: 'HIGH', state: 'active_ack', ack_by: 'op', ts: 110 })
    expect(s.alarms.get(30)!.acked).toBe(true)
    s.applyAlarmEvent({ event: 'updated', id: 30, sn: 'L', alarm_type: 'HIGH', level: 2, state: 'active_unack', ts: 120 })
    const a = s.alarms.get(30)!
    expect([a.acked, a.ackBy, a.level]).toEqual([false, null, 2])
  })

  it('an open OFFLINE alarm makes the device grey even when the frame names its gas alarm', () => {
    const s = useDashboardStore()
    s.applyAlarmEvent({ event: 'raised', id: 20, sn: 'E', alarm_type: 'HIGH', category: 'gas', level: 1, state: 'active_unack' })
    s.applyRealtime([{ sn: 'E', ppm: 150, status: 'alarm', level: 1, alarm_type: 'HIGH' }])
    expect(s.stateOf(s.devices.get('E')!)).toBe('alarm1')
    const before = s.devices.get('E')
    s.applyAlarmEvent({ event: 'raised', id: 21, sn: 'E', alarm_type: 'OFFLINE', category: 'fault', level: 1, state: 'active_unack' })
    s.applyRealtime([{ sn: 'E', ppm: 150, status: 'alarm', level: 1, alarm_type: 'HIGH' }])
    expect(s.stateOf(s.devices.get('E')!)).toBe('offline')
    expect(s.devices.get('E')).not.toBe(before) // a new object per frame
  })

  it('a level-2 frame for a device the list does not know is level 2', () => {
    const s = useDashboardStore()
    s.applyRealtime([{ sn: 'C', ppm: 900, status: 'alarm', level: 2, alarm_type: 'HIGH' }])
    expect(s.stateOf(s.devices.get('C')!)).toBe('alarm2')
  })

  it('fault alarms are yellow, offline grey, and fault alarms do not latch', () => {
    const s = useDashboardStore()
    s.applyRealtime([{ sn: 'B', ppm: 1, status: 'online', level: null }])
    s.applyAlarmEvent({ event: 'raised', id: 9, sn: 'B', alarm_type: 'LOW_BAT', category: 'fault', state: 'active_unack' })
    expect(s.stateOf(s.devices.get('B')!)).toBe('fault')
    s.applyRealtime([{ sn: 'B', ppm: null, status: 'alarm', level: 1, alarm_type: 'OFFLINE' }])
    s.applyAlarmEvent({ event: 'cleared', id: 9, sn: 'B', alarm_type: 'LOW_BAT', state: 'cleared_unack' })
    expect(s.stateOf(s.devices.get('B')!)).toBe('offline')
    expect(alarmVisible(s.alarms.get(9)!)).toBe(false)
    expect(s.counts.offline).toBe(1)
  })
})

describe('alarm list like a controller (GB 16808)', () => {
  beforeEach(() => setActivePinia(createPinia()))
  const raise = (s: ReturnType<typeof useDashboardStore>, id: number, sn: string, type: string, ts: number, category: 'gas' | 'fault' = 'gas') =>
    s.applyAlarmEvent({ event: 'raised', id, sn, alarm_type: type, category, level: 1, state: 'active_unack', ts })

  it('active unacknowledged, then active acknowledged, then latched; newest first within each', () => {
    const s = useDashboardStore()
    raise(s, 1, 'A', 'HIGH', 100) // will be latched
    raise(s, 2, 'B', 'HIGH', 110) // will be acknowledged, still open
    raise(s, 3, 'C', 'OFFLINE', 120, 'fault')
    raise(s, 4, 'D', 'HIGH', 130)
    raise(s, 5, 'E', 'HIGH', 90) // older, open, unacknowledged
    raise(s, 6, 'F', 'HIGH', 95) // latched too, older than 1
    s.applyAlarmEvent({ event: 'cleared', id: 1, sn: 'A', alarm_type: 'HIGH', state: 'cleared_unack', ts: 140 })
    s.applyAlarmEvent({ event: 'cleared', id: 6, sn: 'F', alarm_type: 'HIGH', state: 'cleared_unack', ts: 141 })
    s.applyAlarmEvent({ event: 'acked', id: 2, sn: 'B', alarm_type: 'HIGH', state: 'active_ack', ack_by: 'admin', ts: 150 })
    expect(s.visibleAlarms.map((a) => a.id)).toEqual([4, 3, 5, 2, 1, 6])
    // a new alarm goes to the top
    raise(s, 7, 'G', 'LOW', 160)
    expect(s.visibleAlarms[0].id).toBe(7)
  })

  it('首警 is the first gas alarm of the episode, never a fault or offline', () => {
    const s = useDashboardStore()
    raise(s, 10, 'X', 'OFFLINE', 50, 'fault')
    raise(s, 11, 'Y', 'LOW_BAT', 60, 'fault')
    expect(s.firstAlarm).toBeNull()
    raise(s, 12, 'A', 'HIGH', 100)
    raise(s, 13, 'B', 'HIGH', 120)
    expect(s.firstAlarm?.id).toBe(12)
    // still the first while it is latched (the episode is not over)
    s.applyAlarmEvent({ event: 'cleared', id: 12, sn: 'A', alarm_type: 'HIGH', state: 'cleared_unack', ts: 130 })
    expect(s.firstAlarm?.id).toBe(12)
    // acknowledged and cleared: it leaves, the next gas alarm is first
    s.applyAlarmEvent({ event: 'acked', id: 12, sn: 'A', alarm_type: 'HIGH', state: 'cleared_ack', ts: 140 })
    expect(s.firstAlarm?.id).toBe(13)
  })

  it('a rise to level 2 of an acknowledged alarm is unacknowledged again', () => {
    const s = useDashboardStore()
    raise(s, 20, 'A', 'HIGH', 100)
    s.applyAlarmEvent({ event: 'acked', id: 20, sn: 'A', alarm_type: 'HIGH', state: 'active_ack', ack_by: 'admin', ts: 110 })
    expect(s.alarms.get(20)!.acked).toBe(true)
    s.applyAlarmEvent({ event: 'updated', id: 20, sn: 'A', alarm_type: 'HIGH', level: 2, state: 'active_unack', ts: 120 })
    const a = s.alarms.get(20)!
    expect(a.acked).toBe(false)
    expect(a.level).toBe(2)
    expect(s.visibleAlarms[0].id).toBe(20)
  })
})
