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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(append_read_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(torn_tail_is_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(bound_and_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(buffered_until_flush, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
