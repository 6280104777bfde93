/* fw_err.c - names of the firmware core's error codes (fw_err.h).
 * Owns the name table. No OS, no heap. Thread: any. */
#include "fw_err.h"

const char *fw_err_name(int code)
{
    switch(code) {
    case FW_OK:
        return "FW_OK";
#define FW_ERR_CASE(n, v, m)                                                                       \
    case n:                                                                                        \
        return #n;
        FW_ERRORS(FW_ERR_CASE)
#undef FW_ERR_CASE
    default:
        return "?";
    }
}
