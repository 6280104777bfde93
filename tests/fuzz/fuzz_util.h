/* fuzz_util.h - helpers shared by the libFuzzer targets of tests/fuzz/:
 * an invariant check that names the broken rule, a copy of the input that
 * ends at an unreadable page, and C-string views of the input.
 * Owns the guard region (one per process). Thread: libFuzzer's only. */
#ifndef MCS_FUZZ_UTIL_H
#define MCS_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The stream the target's own reports go to: set by fuzz_quiet_stderr() to
 * the original stderr while the code under test writes to /dev/null. */
static FILE *fuzz_report;

/* An invariant of the code under test. abort() makes libFuzzer keep the
 * input as a crash artifact; the message says which rule broke. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if(!(cond)) {                                                                              \
            fprintf(fuzz_report ? fuzz_report : stderr, "fuzz invariant failed: %s (%s:%d)\n",     \
                    #cond, __FILE__, __LINE__);                                                    \
            fflush(fuzz_report ? fuzz_report : stderr);                                            \
            abort();                                                                               \
        }                                                                                          \
    } while(0)

/* Sends the stderr of the code under test (config problems, one line per bad
 * input) to /dev/null without touching fd 2, where libFuzzer and the
 * sanitizers report: glibc's stderr is an assignable variable, and
 * libFuzzer captured its own FILE * before main. FUZZ_VERBOSE=1 keeps it. */
static inline void fuzz_quiet_stderr(void)
{
    FILE *null;
    const char *v = getenv("FUZZ_VERBOSE");

    fuzz_report = stderr;
    if(v && *v && *v != '0')
        return;
    null = fopen("/dev/null", "w");
    if(null)
        stderr = null;
}

/* The guard region: GUARD_CAP readable bytes followed by one PROT_NONE page. */
#define GUARD_CAP (1u << 20)

/* Returns a copy of data[0..n) whose last byte is the last readable byte
 * before an unmapped page, so that a read past n faults even inside code
 * without ASan instrumentation (the system cJSON). Not NUL-terminated. Valid
 * until the next call. Inputs larger than the region get a heap copy. */
static inline const char *fuzz_tail_copy(const uint8_t *data, size_t n)
{
    static char *region;
    static char *heap;
    long page = sysconf(_SC_PAGESIZE);

    free(heap);
    heap = NULL;
    if(!region) {
        char *m = mmap(NULL, GUARD_CAP + (size_t)page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        FUZZ_CHECK(m != MAP_FAILED);
        FUZZ_CHECK(mprotect(m + GUARD_CAP, (size_t)page, PROT_NONE) == 0);
        region = m;
    }
    if(n > GUARD_CAP) {
        heap = malloc(n);
        FUZZ_CHECK(heap != NULL);
        memcpy(heap, data, n);
        return heap;
    }
    if(n)
        memcpy(region + GUARD_CAP - n, data, n);
    return region + GUARD_CAP - n;
}

/* A cursor over the input that hands out NUL-terminated pieces. */
struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

/* Takes one byte (0 when the input is used up). */
static inline uint8_t fuzz_byte(struct fuzz_in *in)
{
    uint8_t b = 0;
    if(in->n) {
        b = in->p[0];
        in->p++;
        in->n--;
    }
    return b;
}

/* Takes bytes up to the next NUL (or the end) as a new heap string, so that
 * ASan sees any read past its terminator. The caller frees it. */
static inline char *fuzz_str(struct fuzz_in *in)
{
    const uint8_t *z = memchr(in->p, 0, in->n);
    size_t len = z ? (size_t)(z - in->p) : in->n;
    char *s = malloc(len + 1);

    FUZZ_CHECK(s != NULL);
    memcpy(s, in->p, len);
    s[len] = '\0';
    in->p += len + (z ? 1 : 0);
    in->n -= len + (z ? 1 : 0);
    return s;
}

/* libFuzzer's entry points, declared once for every target. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerInitialize of a target that needs nothing but a quiet stderr. */
#define FUZZ_QUIET_INITIALIZE                                                \
    int LLVMFuzzerInitialize(int *argc, char ***argv)                        \
    {                                                                        \
        (void)argc;                                                          \
        (void)argv;                                                          \
        fuzz_quiet_stderr();                                                 \
        return 0;                                                            \
    }

#endif
