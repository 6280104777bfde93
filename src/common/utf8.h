/* utf8.h - what a well-formed UTF-8 sequence is (RFC 3629: no overlong
 * forms, no surrogates, nothing beyond U+10FFFF), for the checks of outside
 * text: mcs-api's query arguments and bodies (src/api/reqparse.c), the
 * names the CLI accepts (src/tools/mcs_util.c) and the platforms' answers
 * the notifier stores (src/mcsd/notify.c), the log lines' JSON strings
 * (src/common/log.c). Each caller keeps its own
 * policy on top (NUL, control characters). Owns nothing. Thread: any. */
#ifndef MCS_UTF8_H
#define MCS_UTF8_H

#include <stddef.h>

/* Decodes the sequence at s, of which n bytes may be read. Returns its
 * length (1..4) with the code point in *cp, or 0 when the bytes there are
 * not one well-formed sequence (a stray continuation byte, 0xC0/0xC1 or
 * 0xF5.. lead bytes, an overlong form, a surrogate, a sequence cut off by
 * n, or n == 0). A NUL byte is U+0000 of length 1. */
size_t mcs_utf8_next(const unsigned char *s, size_t n, unsigned *cp);

/* out := in with every byte that is not part of a well-formed sequence
 * replaced by '?', cut on a
 * character boundary to fit outn (> 0) bytes with its NUL; a character cut
 * off at the end of in (a snprintf that cut a longer text) is dropped. For
 * outside text stored in PostgreSQL, which refuses ill-formed UTF-8. */
void mcs_utf8_clean(const char *in, char *out, size_t outn);

#endif
