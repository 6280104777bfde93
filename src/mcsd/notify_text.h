/* notify_text.h - what an alarm message says (issues #7, #15, R-AL-5): the
 * template variables, the Chinese words for types, levels and events with
 * the English beside them, and the default text of each kind of alarm (gas
 * with value and limit, OFFLINE with the last report, faults with their
 * reading, system alarms with what failed), in the plant's local time.
 * Used by the channels (notify_chan.c) and the notifier's digest. Owns
 * nothing; touches neither the network nor the database. Thread: any. */
#ifndef MCS_NOTIFY_TEXT_H
#define MCS_NOTIFY_TEXT_H

#include <stddef.h>

struct notify_msg;

/* Renders tpl with {sn} {name} {location} {time} {tz} {type} {level} {val}
 * {unit} {threshold} {event} {id} {count} {detail} {last_seen} and the words
 * {level_text} {type_text} {event_text} (Chinese) and {level_en} {type_en}
 * {event_en} (English); json_escape escapes the values for a JSON body.
 * Unknown {x} stay as they are. Output is cut at outn-1 bytes (never mid
 * UTF-8 sequence). */
void notify_render(const char *tpl, const struct notify_msg *m, int json_escape, char *out,
                   size_t outn);

/* The default text of a message: Chinese first, English on the next line,
 * worded for its type (see docs/ALARMS.md "Message text"); m->text when set
 * (digests). Cut like notify_render. */
void notify_default_text(const struct notify_msg *m, char *out, size_t outn);

/* The default e-mail subject template (Chinese, then English). */
extern const char notify_default_subject[];

/* Chinese and English names of an alarm type; the type itself when unknown.
 * Never NULL. */
const char *notify_type_zh(const char *type);
const char *notify_type_en(const char *type);

/* Chinese and English words of an alarm state (active_unack ... cleared_ack,
 * docs/ALARMS.md "Lifecycle and states"); the state itself when unknown.
 * Never NULL. */
const char *notify_state_zh(const char *state);
const char *notify_state_en(const char *state);

/* "UTC+08:00" for an offset in seconds east of UTC, into out. */
void notify_tz_label(int offset_s, char *out, size_t outn);

#endif
