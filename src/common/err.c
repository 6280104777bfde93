/* err.c - names and messages of MCS_E* codes, from the one X-macro table.
 * Owns nothing mutable. Thread: any. */
#include "err.h"

const char *mcs_strerror(int code)
{
    switch(code) {
    case 0: return "success";
#define MCS_ERR_MSG(name, value, msg) case name: return msg;
    MCS_ERRORS(MCS_ERR_MSG)
#undef MCS_ERR_MSG
    default: return "unknown error";
    }
}

const char *mcs_errname(int code)
{
    switch(code) {
    case 0: return "OK";
#define MCS_ERR_NAME(name, value, msg) case name: return #name;
    MCS_ERRORS(MCS_ERR_NAME)
#undef MCS_ERR_NAME
    default: return "MCS_E?";
    }
}
