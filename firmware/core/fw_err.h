/* fw_err.h - error codes of the device firmware core (R-FW-1): 0 is success,
 * each failure a negative FW_E... code; one X-macro table gives the names.
 * Owns nothing. No OS, no heap. Thread: the core's main loop. */
#ifndef FW_ERR_H
#define FW_ERR_H

/* X(name, value, message) */
#define FW_ERRORS(X)                                                                               \
    X(FW_E_IO, -1, "hardware or transport failure")                                                \
    X(FW_E_AGAIN, -2, "not ready yet, try again")                                                  \
    X(FW_E_FULL, -3, "buffer or store full")                                                       \
    X(FW_E_MALFORMED, -4, "malformed input")                                                       \
    X(FW_E_RANGE, -5, "value out of range")                                                        \
    X(FW_E_STATE, -6, "not possible in this state")                                                \
    X(FW_E_SIM, -7, "SIM card fault")                                                              \
    X(FW_E_UNKNOWN, -8, "unknown command")                                                         \
    X(FW_E_CRC, -9, "checksum mismatch")

enum fw_err {
    FW_OK = 0,
#define FW_ERR_ENUM(n, v, m) n = v,
    FW_ERRORS(FW_ERR_ENUM)
#undef FW_ERR_ENUM
};

/* Returns the short name of code ("FW_E_IO"; "FW_OK" for 0; "?" if unknown).
 * The string is static. */
const char *fw_err_name(int code);

#endif
