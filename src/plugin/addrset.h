/* addrset.h - the plugin's list of internal client addresses (option
 * internal_addresses): IPv4/IPv6 addresses and CIDR networks, and the
 * 16-byte form of a client address used to look them up and as the key of
 * the per-address verification budget (vbudget.h). IPv4 is kept as an
 * IPv4-mapped IPv6 address, so "127.0.0.1" and "::ffff:127.0.0.1" (a
 * dual-stack listener) are the same. Parsing is inet_pton's.
 * Owns nothing beyond the struct. Thread: any (read-only after parse). */
#ifndef MCS_ADDRSET_H
#define MCS_ADDRSET_H

#include <stddef.h>

#define ADDRSET_MAX 32

struct addr_net {
    unsigned char a[16];
    unsigned bits; /* prefix length in the 128-bit form */
};

struct addrset {
    size_t n;
    struct addr_net net[ADDRSET_MAX];
};

/* Parses an address text (IPv4, IPv6, IPv4-mapped IPv6; an IPv6 zone
 * "%eth0" is ignored) into out. Returns 0 or MCS_EINVAL (also for NULL). */
int addr_parse(const char *text, unsigned char out[16]);

/* Parses a list of addresses or networks ("127.0.0.1,10.0.0.0/8 ::1"),
 * separated by commas and/or blanks, at most ADDRSET_MAX. Returns 0, or
 * MCS_ECONFIG with the offending entry named in err. An empty list is
 * allowed (then nothing is internal). */
int addrset_parse(struct addrset *s, const char *list, char *err, size_t errn);

/* 1 when a (from addr_parse) lies in one of the networks of s, else 0. */
int addrset_has(const struct addrset *s, const unsigned char a[16]);

#endif
