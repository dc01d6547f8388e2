/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* mtls_time: the instants of time-boxed rules (not_before=, not_after=),
 * read and written in UTC. Pure APR, no httpd. */

#ifndef MTLS_TIME_H
#define MTLS_TIME_H

#include <apr_pools.h>
#include <apr_time.h>

/* "YYYY-MM-DDTHH:MM:SSZ" and its NUL, with room to spare (the year
 * after 9999-12-31, and what the compiler cannot rule out). */
#define MTLS_TIME_TEXT_LEN 64

/* Parses "YYYY-MM-DD" or an RFC 3339 date-time
 * ("YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)", 'T' and 'Z' in either
 * case) into *out, seconds since the epoch as an apr_time_t. A date alone
 * is the first second of that day in UTC or, with end_of_day, the first
 * second of the next day: not_after=2027-03-31 still admits on all of
 * 31 March. Years 1970 to 9999. Returns NULL or an error in p. */
const char *mtls_time_parse(apr_pool_t *p, const char *text, int end_of_day,
                            apr_time_t *out);

/* t as "YYYY-MM-DDTHH:MM:SSZ" in buf; returns buf. */
char *mtls_time_text(char buf[MTLS_TIME_TEXT_LEN], apr_time_t t);

#endif
