/* err.h - the one error enum of MCS-IoT and its names/messages.
 * Owns: MCS_E* codes (negative ints) and mcs_strerror(). Touches nothing else.
 * Thread: any (pure functions over a constant table). */
#ifndef MCS_ERR_H
#define MCS_ERR_H

/* X(name, value, message). Values are negative; 0 is success. */
#define MCS_ERRORS(X)                                                    \
    X(MCS_ENOMEM, -1, "out of memory")                                   \
    X(MCS_EINVAL, -2, "invalid argument")                                \
    X(MCS_EIO, -3, "input/output error")                                 \
    X(MCS_ECONFIG, -4, "invalid configuration")                          \
    X(MCS_EDB, -5, "database error")                                     \
    X(MCS_EREDIS, -6, "redis error")                                     \
    X(MCS_EMQTT, -7, "mqtt error")                                       \
    X(MCS_ETOOBIG, -8, "input exceeds its configured maximum")           \
    X(MCS_EPARSE, -9, "malformed input")                                 \
    X(MCS_ENOTFOUND, -10, "not found")                                   \
    X(MCS_EFULL, -11, "bounded queue or spool is full")                  \
    X(MCS_ECORRUPT, -12, "corrupt record")                               \
    X(MCS_EAGAIN, -13, "try again later")                                \
    X(MCS_EDUP, -14, "duplicate")                                        \
    X(MCS_ETIMEDOUT, -15, "timed out")

enum mcs_err {
#define MCS_ERR_ENUM(name, value, msg) name = value,
    MCS_ERRORS(MCS_ERR_ENUM)
#undef MCS_ERR_ENUM
};

/* Returns a static message for an MCS_E* code (or "success" for 0,
 * "unknown error" for anything else). Never NULL. */
const char *mcs_strerror(int code);

/* Returns the symbolic name ("MCS_EIO") of a code. Never NULL. */
const char *mcs_errname(int code);

#endif
