/* jsoncheck.c - strict checks over cJSON's parse (see jsoncheck.h).
 * Owns nothing. Thread: any. */
#include "jsoncheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mcs_json_has_nul_escape(const char *s, size_t n)
{
    int in = 0;
    for(size_t i = 0; i < n; i++) {
        if(!in) {
            in = s[i] == '"';
            continue;
        }
        if(s[i] == '"') {
            in = 0;
        } else if(s[i] == '\\') {
            if(i + 5 < n && s[i + 1] == 'u' && !memcmp(s + i + 2, "0000", 4))
                return 1;
            i++; /* the escaped character cannot end the string */
        }
    }
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The repeated name among obj's own members, or NULL. */
static const char *dup_in_object(const cJSON *obj, int *oom)
{
    const cJSON *c, *d;
    const char **names, *found = NULL;
    size_t n = 0, k = 0;

    for(c = obj->child; c; c = c->next)
        n++;
    if(n <= 16) {
        for(c = obj->child; c; c = c->next)
            for(d = c->next; d; d = d->next)
                if(c->string && d->string && !strcmp(c->string, d->string))
                    return c->string;
        return NULL;
    }
    names = malloc(n * sizeof(*names));
    if(!names) {
        *oom = 1;
        return NULL;
    }
    for(c = obj->child; c; c = c->next)
        if(c->string)
            names[k++] = c->string;
    qsort(names, k, sizeof(*names), cmp_names);
    for(size_t i = 1; i < k && !found; i++)
        if(!strcmp(names[i - 1], names[i]))
            found = names[i];
    free(names);
    return found;
}

static const char *dup_walk(const cJSON *j, int *oom)
{
    const char *found = NULL;
    if(cJSON_IsObject(j) && (found = dup_in_object(j, oom)))
        return found;
    for(const cJSON *c = j->child; c && !found && !*oom; c = c->next)
        if(cJSON_IsObject(c) || cJSON_IsArray(c))
            found = dup_walk(c, oom);
    return found;
}

const char *mcs_json_dup_key(const cJSON *j, int *oom)
{
    int dummy = 0;
    if(!oom)
        oom = &dummy;
    *oom = 0;
    return j ? dup_walk(j, oom) : NULL;
}

cJSON *mcs_json_parse_strict(const char *s, size_t n, int *fault, char *dup, size_t dupn)
{
    const char *end = NULL, *name;
    cJSON *j = NULL;
    int oom = 0;

    *fault = MCS_JSON_SYNTAX;
    if(!s || !n)
        return NULL;
    j = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    if(!j)
        return NULL;
    while(end < s + n && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
        end++;
    if(end != s + n) {
        *fault = MCS_JSON_TRAILING;
        goto fail;
    }
    if(mcs_json_has_nul_escape(s, n)) {
        *fault = MCS_JSON_NUL;
        goto fail;
    }
    name = mcs_json_dup_key(j, &oom);
    if(oom)
        goto fail; /* cannot tell: refuse rather than let a shadowed value through */
    if(name) {
        *fault = MCS_JSON_DUP;
        if(dup && dupn)
            snprintf(dup, dupn, "%s", name);
        goto fail;
    }
    *fault = MCS_JSON_OK;
    return j;
fail:
    cJSON_Delete(j);
    return NULL;
}
