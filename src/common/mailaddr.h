/* mailaddr.h - what an e-mail address the alarm mail may carry is, shared
 * by mcs-api (PUT /api/config/alarm) and `mcs config alarm set` so that
 * neither stores a sender or recipient that could inject a header line
 * (issue #16, defect 9). Owns nothing. Thread: any. */
#ifndef MCS_MAILADDR_H
#define MCS_MAILADDR_H

#include <stddef.h>

/* 1 when s is one e-mail address (addr-spec, RFC 5321 with ASCII only):
 * local part 1..64 of letters, digits and !#$%&'*+/=?^_`{|}~.- (no
 * leading, trailing or double dot), '@', a domain of dot-separated labels
 * 1..63 of letters, digits and '-' (not at a label's ends), 254 bytes in
 * all. No display name, no spaces, no control characters: the sender goes
 * into the From: header and the SMTP envelope. Else 0. */
int mcs_mail_addr_valid(const char *s);

/* 1 when every item of list (addresses separated by ';' or ',', spaces
 * around them ignored, as the mail channel splits its "to") is an address
 * and there is at least one. Else 0 with the first bad item (at most
 * badn - 1 bytes) in bad. */
int mcs_mail_list_valid(const char *list, char *bad, size_t badn);

#endif
