/* mailaddr.c - e-mail address checks (see mailaddr.h).
 * Owns nothing. Thread: any. */
#include "mailaddr.h"

#include <stdio.h>
#include <string.h>

int mcs_mail_addr_valid(const char *s)
{
    static const char atext[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                "!#$%&'*+/=?^_`{|}~-";
    const char *at = strchr(s, '@'), *p;
    size_t label = 0;

    if(!at || strchr(at + 1, '@') || strlen(s) > 254 || at == s || at - s > 64 || !at[1])
        return 0;
    for(p = s; p < at; p++)
        if(*p == '.' ? (p == s || p + 1 == at || p[1] == '.') : !strchr(atext, *p))
            return 0;
    for(p = at + 1;; p++) {
        if(*p == '.' || !*p) {
            if(!label || p[-1] == '-')
                return 0;
            if(!*p)
                return 1;
            label = 0;
            continue;
        }
        if(!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             (*p == '-' && label)) ||
           ++label > 63)
            return 0;
    }
}

int mcs_mail_list_valid(const char *list, char *bad, size_t badn)
{
    char item[300];
    int n = 0;

    for(const char *p = list;;) {
        size_t len = strcspn(p, ";,");
        const char *b = p, *e = p + len;
        while(b < e && *b == ' ')
            b++;
        while(e > b && e[-1] == ' ')
            e--;
        snprintf(item, sizeof(item), "%.*s", (int)(e - b), b);
        if(e > b) {
            if((size_t)(e - b) >= sizeof(item) || !mcs_mail_addr_valid(item)) {
                if(badn)
                    snprintf(bad, badn, "%s", item);
                return 0;
            }
            n++;
        }
        if(!p[len])
            break;
        p += len + 1;
    }
    if(!n && badn)
        snprintf(bad, badn, "%s", "");
    return n > 0;
}
