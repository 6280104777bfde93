/* notify_text.c - message text of the alarms (see notify_text.h). Owns
 * nothing; must not touch the network or the database. Thread: any. */
#include "notify_text.h"
#include "notify_chan.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A code with its Chinese and English words. */
struct word {
    const char *t, *zh, *en;
};

static const struct word types[] = {
    {"HIGH", "浓度高报", "High gas"},
    {"LOW", "浓度低报", "Low gas"},
    {"OVER_RANGE", "超量程", "Over range"},
    {"LOW_BAT", "电量低", "Low battery"},
    {"DEVICE", "传感器故障", "Sensor fault"},
    {"OFFLINE", "设备离线", "Device offline"},
    {"UNKNOWN_DEVICE", "未知设备接入", "Unknown devices"},
    {"NOTIFY_FAILED", "通知发送失败", "Notification failed"},
    {"ARCHIVE_FAILED", "数据归档失败", "Archive failed"},
    {"BACKUP_FAILED", "数据库备份失败", "Backup failed"},
    {"HEALTH_FAILED", "健康检查失败", "Health check failed"},
    {"LICENSE_FAILED", "许可证检查失败", "License check failed"},
    {"JOB_OFFLINE", "离线扫描任务失败", "Offline scan job failed"},
    {"JOB_STATS", "统计任务失败", "Statistics job failed"},
    {"JOB_VACUUM", "数据库维护失败", "Database maintenance failed"},
    {"DISK_HIGH", "磁盘使用率高", "Disk usage high"},
    {"MEM_HIGH", "内存使用率高", "Memory usage high"},
    {"CPU_HIGH", "CPU 持续高负载", "CPU busy"},
    {"ONLINE_LOW", "设备在线率低", "Online rate low"},
    {"MSG_RATE_DROP", "消息量骤降", "Message rate dropped"},
    {"DB_CONN_HIGH", "数据库连接数接近上限", "Database connections near the limit"},
    {"JOURNAL_BACKLOG", "采集日志积压增长", "Journal backlog growing"},
};

static const struct word states[] = {
    {"active_unack", "报警中，未确认", "Active, unacknowledged"},
    {"active_ack", "报警中，已确认", "Active, acknowledged"},
    {"cleared_unack", "已恢复，待确认", "Cleared, awaiting acknowledgement"},
    {"cleared_ack", "已恢复，已确认", "Cleared, acknowledged"},
};

/* The word of code t in tab (n entries), English when en; t when unknown. */
static const char *word(const struct word *tab, size_t n, const char *t, int en)
{
    for(size_t i = 0; i < n; i++)
        if(!strcmp(tab[i].t, t))
            return en ? tab[i].en : tab[i].zh;
    return t;
}
#define NWORDS(tab) (sizeof(tab) / sizeof(tab[0]))

const char *notify_type_zh(const char *type)
{
    return word(types, NWORDS(types), type, 0);
}

const char *notify_type_en(const char *type)
{
    return word(types, NWORDS(types), type, 1);
}

const char *notify_state_zh(const char *state)
{
    return word(states, NWORDS(states), state, 0);
}

const char *notify_state_en(const char *state)
{
    return word(states, NWORDS(states), state, 1);
}

static const char *level_zh(const struct notify_msg *m)
{
    if(!strcmp(m->category, "fault"))
        return "设备故障";
    if(!strcmp(m->category, "system"))
        return "系统告警";
    return m->level >= 2 ? "二级报警" : "一级报警";
}

static const char *level_en(const struct notify_msg *m)
{
    if(!strcmp(m->category, "fault"))
        return "Device fault";
    if(!strcmp(m->category, "system"))
        return "System alert";
    return m->level >= 2 ? "Level-2 alarm" : "Level-1 alarm";
}

static const struct {
    const char *ev, *zh, *en;
} events[] = {
    {"level2", "[升级为二级] ", "[Raised to level 2] "},
    {"reminder", "[提醒] ", "[Reminder] "},
    {"escalate", "[未确认升级通知] ", "[Unacknowledged, escalated] "},
    {"test", "[测试] ", "[Test] "},
    {"clear", "[已恢复] ", "[Recovered] "},
};

static const char *event_word(const char *ev, int en)
{
    for(size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        if(!strcmp(events[i].ev, ev))
            return en ? events[i].en : events[i].zh;
    return "";
}

void notify_tz_label(int offset_s, char *out, size_t outn)
{
    int a = offset_s < 0 ? -offset_s : offset_s;
    snprintf(out, outn, "UTC%c%02d:%02d", offset_s < 0 ? '-' : '+', a / 3600, a % 3600 / 60);
}

/* Cuts s to at most n bytes, never inside a UTF-8 sequence; text from the
 * first byte that is not well-formed UTF-8 on (a sequence cut by an earlier
 * limit, or foreign bytes) is dropped too, so no platform or database
 * refuses the message for its encoding. */
static void cut_utf8(char *s, size_t n)
{
    size_t l = strlen(s), at = 0;
    while(at < l) {
        unsigned cp;
        size_t k = mcs_utf8_next((const unsigned char *)s + at, l - at, &cp);
        if(k == 0 || at + k > n)
            break;
        at += k;
    }
    s[at] = '\0';
}

static void json_esc(const char *s, char *out, size_t outn)
{
    size_t o = 0;
    for(; *s && o + 7 < outn; s++) {
        unsigned char c = (unsigned char)*s;
        if(c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        }
        else if(c < 0x20)
            o += (size_t)snprintf(out + o, outn - o, "\\u%04x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
}

/* The value of template variable key (kl bytes) or NULL; num is scratch. */
static const char *var(const struct notify_msg *m, const char *key, size_t kl, char *num,
                       size_t numn)
{
#define K(name) (kl == sizeof(name) - 1 && !strncmp(key, name, kl))
    if(K("sn"))
        return m->sn;
    if(K("name"))
        return m->name[0] ? m->name : m->sn;
    if(K("location"))
        return m->location;
    if(K("time"))
        return m->time;
    if(K("tz")) {
        notify_tz_label(m->tz_offset_s, num, numn);
        return num;
    }
    if(K("type"))
        return m->type;
    if(K("type_text"))
        return notify_type_zh(m->type);
    if(K("type_en"))
        return notify_type_en(m->type);
    if(K("level")) {
        snprintf(num, numn, "%d", m->level);
        return num;
    }
    if(K("level_text"))
        return level_zh(m);
    if(K("level_en"))
        return level_en(m);
    if(K("val"))
        return m->val;
    if(K("unit"))
        return m->unit;
    if(K("threshold"))
        return m->threshold;
    if(K("event"))
        return m->event;
    if(K("event_text"))
        return event_word(m->event, 0);
    if(K("event_en"))
        return event_word(m->event, 1);
    if(K("detail"))
        return m->detail;
    if(K("last_seen"))
        return m->last_seen[0] ? m->last_seen : "-";
    if(K("id")) {
        snprintf(num, numn, "%lld", m->alarm_id);
        return num;
    }
    if(K("count")) {
        snprintf(num, numn, "%lld", m->count);
        return num;
    }
#undef K
    return NULL;
}

void notify_render(const char *tpl, const struct notify_msg *m, int json_escape, char *out,
                   size_t outn)
{
    size_t o = 0;
    char num[32], tmp[2 * sizeof(((struct notify_msg *)0)->detail) + 64];
    if(!outn)
        return;
    while(*tpl && o + 1 < outn) {
        const char *end = *tpl == '{' ? strchr(tpl, '}') : NULL;
        const char *v = end ? var(m, tpl + 1, (size_t)(end - tpl - 1), num, sizeof(num)) : NULL;
        if(v) {
            if(json_escape) {
                json_esc(v, tmp, sizeof(tmp));
                v = tmp;
            }
            size_t vl = strlen(v);
            if(o + vl >= outn)
                vl = outn - 1 - o;
            memcpy(out + o, v, vl);
            o += vl;
            tpl = end + 1;
            continue;
        }
        out[o++] = *tpl++;
    }
    out[o] = '\0';
    cut_utf8(out, outn - 1);
}

/* Default texts: Chinese line, then the English line. */
#define HEAD_ZH "{event_text}【{level_text}】{type_text} "
#define HEAD_EN "{event_en}[{level_en}] {type_en}: "
#define WHEN_ZH " 时间 {time}（{tz}）"
#define WHEN_EN ", {time} ({tz})"

static const char TPL_GAS[] =
    HEAD_ZH "设备 {name}({sn}) 位置 {location} 当前值 {val}{unit} 阈值 {threshold}{unit}" WHEN_ZH
    "\n" HEAD_EN "{name}({sn}) at {location}, value {val}{unit}, limit {threshold}{unit}" WHEN_EN;
static const char TPL_OFFLINE[] =
    HEAD_ZH "设备 {name}({sn}) 位置 {location} 最后上报 {last_seen}" WHEN_ZH
    "\n" HEAD_EN "{name}({sn}) at {location}, last report {last_seen}" WHEN_EN;
static const char TPL_LOW_BAT[] =
    HEAD_ZH "设备 {name}({sn}) 位置 {location} 电量 {val}%（低于 {threshold}%）" WHEN_ZH
    "\n" HEAD_EN "{name}({sn}) at {location}, battery {val}% (below {threshold}%)" WHEN_EN;
static const char TPL_DEVICE[] =
    HEAD_ZH "设备 {name}({sn}) 位置 {location} 故障代码 {val}" WHEN_ZH
    "\n" HEAD_EN "{name}({sn}) at {location}, error code {val}" WHEN_EN;
static const char TPL_SYSTEM[] =
    HEAD_ZH "来源 {sn} 详情 {detail}" WHEN_ZH
    "\n" HEAD_EN "source {sn}, {detail}" WHEN_EN;
static const char TPL_SYSTEM_CLEAR[] =
    HEAD_ZH "来源 {sn} 已恢复正常" WHEN_ZH "\n" HEAD_EN "source {sn} is back to normal" WHEN_EN;

const char notify_default_subject[] =
    "{event_text}【{level_text}】{name} {type_text} / {event_en}{level_en}: {type_en}";

void notify_default_text(const struct notify_msg *m, char *out, size_t outn)
{
    const char *tpl = TPL_GAS;
    if(m->text) {
        snprintf(out, outn, "%s", m->text);
        cut_utf8(out, outn - 1);
        return;
    }
    if(!strcmp(m->category, "system"))
        tpl = !strcmp(m->event, "clear") ? TPL_SYSTEM_CLEAR : TPL_SYSTEM;
    else if(!strcmp(m->type, "OFFLINE"))
        tpl = TPL_OFFLINE;
    else if(!strcmp(m->type, "LOW_BAT"))
        tpl = TPL_LOW_BAT;
    else if(!strcmp(m->type, "DEVICE"))
        tpl = TPL_DEVICE;
    notify_render(tpl, m, 0, out, outn);
}
