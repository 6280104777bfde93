/* test_journal.c - journal append/read/commit, torn tails, the bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "err.h"
#include "journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/mcs-journal-test-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static struct mcs_jrec rec(int seq)
{
    struct mcs_jrec r;
    memset(&r, 0, sizeof(r));
    r.type = MCS_JREC_READING;
    r.seq = seq;
    r.ts = 1800000000 + seq;
    memcpy(r.sn, "A001", 4);
    return r;
}

static int count_segments(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while(d && (e = readdir(d)))
        if(!strncmp(e->d_name, "j-", 2))
            n++;
    if(d)
        closedir(d);
    return n;
}

static void append_read_commit(void **state)
{
    struct mcs_journal j;
    struct mcs_jrec out[64];
    int64_t next, pos = 0;
    (void)state;
    assert_int_equal(journal_open(&j, dir, 1 << 20), 0);
    for(int i = 0; i < 100; i++) {
        struct mcs_jrec r = rec(i);
        assert_int_equal(journal_append(&j, &r, 1), 0);
    }
    int seen = 0;
    while(seen < 100) {
        int n = journal_read(&j, pos, out, 64, &next);
        assert_true(n > 0);
        for(int i = 0; i < n; i++)
            assert_int_equal(out[i].seq, seen + i);
        seen += n;
        pos = next;
    }
    assert_int_equal(journal_read(&j, pos, out, 64, &next), 0);
    journal_commit(&j, pos);
    journal_close(&j);

    /* Reopen: the writer continues at the end. */
    assert_int_equal(journal_open(&j, dir, 1 << 20), 0);
    assert_int_equal(atomic_load(&j.wpos), pos);
    journal_close(&j);
}

static void torn_tail_is_cut(void **state)
{
    struct mcs_journal j;
    struct mcs_jrec out[8];
    int64_t next;
    char path[600];
    (void)state;
    assert_int_equal(journal_open(&j, dir, 1 << 20), 0);
    for(int i = 0; i < 3; i++) {
        struct mcs_jrec r = rec(i);
        assert_int_equal(journal_append(&j, &r, 1), 0);
    }
    int64_t whole = atomic_load(&j.wpos);
    journal_close(&j);
    /* A crash mid-write leaves half a record. */
    snprintf(path, sizeof(path), "%s/j-%020d.log", dir, 0);
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\x74\x00\x00\x00garbage", 11), 11);
    close(fd);
    assert_int_equal(journal_open(&j, dir, 1 << 20), 0);
    assert_int_equal(atomic_load(&j.wpos), whole);
    struct mcs_jrec r = rec(3);
    assert_int_equal(journal_append(&j, &r, 1), 0);
    assert_int_equal(journal_read(&j, 0, out, 8, &next), 4);
    assert_int_equal(out[3].seq, 3);
    journal_close(&j);
}

static void bound_and_segments(void **state)
{
    struct mcs_journal j;
    struct mcs_jrec out[256];
    int64_t next, pos = 0;
    int ok = 0, full = 0;
    (void)state;
    /* 64 KiB bound: segments are the minimum size (64 records). */
    assert_int_equal(journal_open(&j, dir, 64 << 10), 0);
    for(int i = 0; i < 2000; i++) {
        struct mcs_jrec r = rec(i);
        int rc = journal_append(&j, &r, 1);
        if(rc == 0)
            ok++;
        else {
            assert_int_equal(rc, MCS_EFULL);
            full++;
        }
    }
    assert_true(ok > 100 && full > 0);
    assert_true(atomic_load(&j.wpos) <= 64 << 10);
    assert_true(count_segments() > 1);
    /* Read everything across segments, in order. */
    int seen = 0;
    for(;;) {
        int n = journal_read(&j, pos, out, 256, &next);
        assert_true(n >= 0);
        if(n == 0)
            break;
        for(int i = 0; i < n; i++)
            assert_int_equal(out[i].seq, seen + i);
        seen += n;
        pos = next;
    }
    assert_int_equal(seen, ok);
    /* Committing frees space and old segments; appends work again. */
    journal_commit(&j, pos);
    assert_int_equal(count_segments(), 1);
    struct mcs_jrec r = rec(ok);
    assert_int_equal(journal_append(&j, &r, 1), 0);
    assert_int_equal(journal_read(&j, pos, out, 256, &next), 1);
    assert_int_equal(out[0].seq, ok);
    journal_close(&j);
}

static void buffered_until_flush(void **state)
{
    struct mcs_journal j;
    struct mcs_jrec out[8];
    int64_t next;
    (void)state;
    assert_int_equal(journal_open(&j, dir, 1 << 20), 0);
    struct mcs_jrec r = rec(1);
    assert_int_equal(journal_append(&j, &r, 0), 0);
    /* QoS 0 records wait in the buffer: the reader sees nothing yet. */
    assert_int_equal(journal_read(&j, 0, out, 8, &next), 0);
    r = rec(2);
    assert_int_equal(journal_append(&j, &r, 1), 0);
    /* A sync append writes everything before it, in order. */
    assert_int_equal(journal_read(&j, 0, out, 8, &next), 2);
    assert_int_equal(out[0].seq, 1);
    assert_int_equal(out[1].seq, 2);
    r = rec(3);
    assert_int_equal(journal_append(&j, &r, 0), 0);
    assert_int_equal(journal_flush(&j), 0);
    assert_int_equal(journal_read(&j, next, out, 8, &next), 1);
    assert_int_equal(out[0].seq, 3);
    /* Many buffered records across segment boundaries keep their order. */
    journal_close(&j);
    assert_int_equal(journal_open(&j, dir, 64 << 10), 0);
    int64_t pos = atomic_load(&j.wpos);
    journal_commit(&j, pos);
    for(int i = 0; i < 300; i++) {
        r = rec(100 + i);
        assert_int_equal(journal_append(&j, &r, 0), 0);
    }
    assert_int_equal(journal_flush(&j), 0);
    int seen = 0;
    struct mcs_jrec many[64];
    for(;;) {
        int n = journal_read(&j, pos, many, 64, &next);
        assert_true(n >= 0);
        if(!n)
            break;
        for(int i = 0; i < n; i++)
            assert_int_equal(many[i].seq, 100 + seen + i);
        seen += n;
        pos = next;
    }
    assert_int_equal(seen, 300);
    journal_close(&j);
}

/* Reads everything from pos on (skipping what the journal skips) into
 * seqs; returns the count. */
static int read_all(struct mcs_journal *j, int64_t pos, int *seqs, int max)
{
    struct mcs_jrec out[64];
    int64_t next;
    int seen = 0;
    for(int guard = 0; guard < 10000; guard++) {
        int n = journal_read(j, pos, out, 64, &next);
        assert_true(n >= 0);
        if(n == 0 && next == pos)
            break;
        for(int i = 0; i < n && seen < max; i++)
            seqs[seen++] = out[i].seq;
        pos = next;
    }
    return seen;
}

/* Path of the idx-th segment (sorted by base). */
static void segment_path(int idx, char *out, size_t n)
{
    struct dirent **list;
    int k = scandir(dir, &list, NULL, alphasort), seen = 0;
    out[0] = '\0';
    for(int i = 0; i < k; i++) {
        if(!strncmp(list[i]->d_name, "j-", 2) && seen++ == idx)
            snprintf(out, n, "%s/%s", dir, list[i]->d_name);
        free(list[i]);
    }
    free(list);
}

#define REC_BYTES ((long)sizeof(struct mcs_jrec) + 8)

/* A power loss can damage any segment the kernel had not written, not only
 * the last: a corrupt record in an earlier segment is counted and skipped,
 * a torn tail of an earlier segment is cut and jumped over; nothing stalls
 * and every good record is read, in order. */
static void damage_in_earlier_segments_is_skipped(void **state)
{
    struct mcs_journal j;
    char p0[600], p1[600];
    int seqs[2000];
    (void)state;
    assert_int_equal(journal_open(&j, dir, 64 << 10), 0); /* 64-record segments */
    for(int i = 0; i < 300; i++) {
        struct mcs_jrec r = rec(i);
        assert_int_equal(journal_append(&j, &r, 1), 0);
    }
    journal_close(&j);
    assert_true(count_segments() >= 4);
    segment_path(0, p0, sizeof(p0));
    segment_path(1, p1, sizeof(p1));
    /* Segment 0: flip a byte inside record 10. */
    int fd = open(p0, O_RDWR);
    assert_true(fd >= 0);
    unsigned char b;
    off_t at = 64 + 10 * REC_BYTES + 20;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0xff;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
    /* Segment 1: its last two and a half records lost (torn tail). */
    struct stat st;
    assert_int_equal(stat(p1, &st), 0);
    assert_int_equal(truncate(p1, st.st_size - 2 * REC_BYTES - REC_BYTES / 2), 0);

    assert_int_equal(journal_open(&j, dir, 64 << 10), 0);
    int n = read_all(&j, 0, seqs, 2000);
    /* 300 written, 1 corrupt, 3 records of segment 1 gone. */
    assert_int_equal(n, 300 - 1 - 3);
    for(int i = 1; i < n; i++)
        assert_true(seqs[i] > seqs[i - 1]);
    for(int i = 0; i < n; i++)
        assert_true(seqs[i] != 10);
    assert_int_equal(atomic_load(&j.bad_records), 1);
    assert_int_equal(atomic_load(&j.gap_bytes), 3 * REC_BYTES);
    journal_close(&j);
}

/* Segments carry their format version: one of an unknown version is never
 * cut to zero — the journal refuses to open and leaves it as it is. */
static void unknown_format_is_refused_untouched(void **state)
{
    struct mcs_journal j;
    char p0[600];
    struct stat before, after;
    (void)state;
    assert_int_equal(journal_open(&j, dir, 1 << 20), 0);
    for(int i = 0; i < 5; i++) {
        struct mcs_jrec r = rec(i);
        assert_int_equal(journal_append(&j, &r, 1), 0);
    }
    journal_close(&j);
    segment_path(0, p0, sizeof(p0));
    int fd = open(p0, O_RDWR);
    unsigned char h[64];
    assert_int_equal(pread(fd, h, 64, 0), 64);
    uint32_t v = MCS_JOURNAL_VERSION + 1;
    memcpy(h + 8, &v, 4); /* version field, with a valid header checksum */
    uint32_t crc = (uint32_t)crc32(0L, h, 56);
    memcpy(h + 56, &crc, 4);
    assert_int_equal(pwrite(fd, h, 64, 0), 64);
    close(fd);
    assert_int_equal(stat(p0, &before), 0);
    assert_int_equal(journal_open(&j, dir, 1 << 20), MCS_ECORRUPT);
    journal_close(&j);
    assert_int_equal(stat(p0, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
}

/* A first-release segment (no header) is still read after the upgrade, and
 * new records go to a new, versioned segment. */
static void headerless_segment_read_after_upgrade(void **state)
{
    struct mcs_journal j;
    char path[600];
    int seqs[16];
    (void)state;
    snprintf(path, sizeof(path), "%s/j-%020d.log", dir, 0);
    int fd = open(path, O_WRONLY | O_CREAT, 0640);
    assert_true(fd >= 0);
    for(int i = 0; i < 3; i++) {
        struct mcs_jrec r = rec(i);
        uint32_t len = sizeof(r), crc = (uint32_t)crc32(0L, (const Bytef *)&r, sizeof(r));
        assert_int_equal(write(fd, &len, 4), 4);
        assert_int_equal(write(fd, &crc, 4), 4);
        assert_int_equal(write(fd, &r, sizeof(r)), (ssize_t)sizeof(r));
    }
    close(fd);
    assert_int_equal(journal_open(&j, dir, 1 << 20), 0);
    assert_int_equal(atomic_load(&j.wpos), 3 * REC_BYTES);
    struct mcs_jrec r = rec(3);
    assert_int_equal(journal_append(&j, &r, 1), 0);
    assert_int_equal(count_segments(), 2);
    assert_int_equal(read_all(&j, 0, seqs, 16), 4);
    for(int i = 0; i < 4; i++)
        assert_int_equal(seqs[i], i);
    journal_close(&j);
}

/* The spool has an identity, kept across restarts and new when the
 * directory is recreated. */
static void spool_identity(void **state)
{
    struct mcs_journal j;
    char first[MCS_SPOOL_ID_LEN + 1], cmd[400];
    (void)state;
    assert_int_equal(journal_open(&j, dir, 1 << 20), 0);
    memcpy(first, j.spool_id, sizeof(first));
    assert_int_equal((int)strlen(first), MCS_SPOOL_ID_LEN);
    journal_close(&j);
    assert_int_equal(journal_open(&j, dir, 1 << 20), 0);
    assert_string_equal(j.spool_id, first);
    journal_close(&j);
    snprintf(cmd, sizeof(cmd), "rm -rf %s/* ", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(journal_open(&j, dir, 1 << 20), 0);
    assert_string_not_equal(j.spool_id, first);
    journal_close(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(append_read_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(torn_tail_is_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(bound_and_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(buffered_until_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(damage_in_earlier_segments_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_format_is_refused_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(headerless_segment_read_after_upgrade, setup, teardown),
        cmocka_unit_test_setup_teardown(spool_identity, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
