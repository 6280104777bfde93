/* numparse.h - whole-string number parsing with bounds, for configuration
 * and command-line arguments. Owns nothing. Thread: any. */
#ifndef MCS_NUMPARSE_H
#define MCS_NUMPARSE_H

/* Parses all of s as a base-10 integer in [lo, hi]. Returns 0 with *out
 * set, or MCS_EINVAL (empty, trailing text, overflow, out of bounds). */
int mcs_parse_long(const char *s, long lo, long hi, long *out);

/* Parses all of s as a finite number in [lo, hi]. Returns 0 with *out set,
 * or MCS_EINVAL. */
int mcs_parse_double(const char *s, double lo, double hi, double *out);

#endif
