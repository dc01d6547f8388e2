/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* UTC instants for time-boxed rules. See mtls_time.h. */

#include <apr_strings.h>
#include <stdio.h>
#include <string.h>

#include "mtls_time.h"

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (Howard Hinnant's days_from_civil): no timegm(), no time zone. */
static apr_int64_t days_from_civil(int y, int m, int d)
{
    apr_int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : n[m - 1];
}

/* n decimal digits at s into *v; 0 if they are not all digits. */
static int digits(const char *s, int n, int *v)
{
    int i;
    *v = 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        *v = *v * 10 + (s[i] - '0');
    }
    return 1;
}

/* "YYYY-MM-DD" at s: days since the epoch; -1 if malformed. */
static apr_int64_t parse_date(const char *s)
{
    int y, m, d;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &m) ||
        s[7] != '-' || !digits(s + 8, 2, &d))
        return -1;
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return -1;
    return days_from_civil(y, m, d);
}

/* ".fraction" at *s, if any: microseconds (digits past the sixth do not
 * count). 0 if a '.' has no digit. */
static int parse_fraction(const char **s, apr_int64_t *usec)
{
    const char *f = *s;
    int n = 0;
    *usec = 0;
    if (*f != '.')
        return 1;
    if (f[1] < '0' || f[1] > '9')
        return 0;
    for (f++; *f >= '0' && *f <= '9'; f++, n++) {
        if (n < 6)
            *usec = *usec * 10 + (*f - '0');
    }
    for (; n < 6; n++)
        *usec *= 10;
    *s = f;
    return 1;
}

/* "HH:MM:SS[.frac](Z|+HH:MM|-HH:MM)" at s: seconds into the day in UTC
 * (may fall outside 0..86399 by the offset) and microseconds; 0 if
 * malformed. A leap second (:60) counts as :59. */
static int parse_clock(const char *s, apr_int64_t *secs, apr_int64_t *usec)
{
    int h, mi, se, oh, om;
    if (!digits(s, 2, &h) || s[2] != ':' || !digits(s + 3, 2, &mi) ||
        s[5] != ':' || !digits(s + 6, 2, &se) || h > 23 || mi > 59 || se > 60)
        return 0;
    s += 8;
    if (!parse_fraction(&s, usec))
        return 0;
    *secs = h * 3600 + mi * 60 + (se == 60 ? 59 : se);
    if ((*s == 'Z' || *s == 'z') && s[1] == '\0')
        return 1;
    if ((*s != '+' && *s != '-') || !digits(s + 1, 2, &oh) || s[3] != ':' ||
        !digits(s + 4, 2, &om) || s[6] != '\0' || oh > 23 || om > 59)
        return 0;
    *secs -= (*s == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    return 1;
}

const char *mtls_time_parse(apr_pool_t *p, const char *text, int end_of_day,
                            apr_time_t *out)
{
    apr_int64_t days = strlen(text) >= 10 ? parse_date(text) : -1;
    apr_int64_t secs = 0, usec = 0;

    if (days >= 0 && text[10] == '\0')
        secs = end_of_day ? 86400 : 0;
    else if (days < 0 || (text[10] != 'T' && text[10] != 't') ||
             !parse_clock(text + 11, &secs, &usec))
        return apr_psprintf(p,
                            "'%s' is not a date (YYYY-MM-DD) or an RFC 3339 "
                            "time (YYYY-MM-DDTHH:MM:SSZ) from 1970 to 9999",
                            text);
    secs += days * 86400;
    if (secs < 0)
        return apr_psprintf(p, "'%s' is before 1970", text);
    *out = apr_time_from_sec(secs) + usec;
    return NULL;
}

char *mtls_time_text(char buf[MTLS_TIME_TEXT_LEN], apr_time_t t)
{
    apr_int64_t secs = apr_time_sec(t), z, era, doe, yoe, doy, mp;
    int y, m, d, rem;

    if (secs < 0)
        secs = 0;
    rem = (int)(secs % 86400);
    z = secs / 86400 + 719468; /* civil_from_days */
    era = z / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = (int)(doy - (153 * mp + 2) / 5 + 1);
    m = (int)(mp < 10 ? mp + 3 : mp - 9);
    y = (int)(yoe + era * 400 + (m <= 2));
    snprintf(buf, MTLS_TIME_TEXT_LEN, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d,
             rem / 3600, rem / 60 % 60, rem % 60);
    return buf;
}
