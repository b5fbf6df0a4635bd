/* Layer 0 (base).
 * Files. Reading a whole file into memory (a mapping, a
 * migration, the cities directory). */
#ifndef TG_FILES_H
#define TG_FILES_H

#include "tg/error.h"
#include <stddef.h>
#include <stdio.h>

/* Reads the file at path, at most max bytes (0: no limit), into a
 * NUL-terminated string. On success *out is owned by the caller, who frees
 * it with free(), and *len (when not NULL) is its length. On failure *out is
 * NULL and errstr says "<path>: <cause>": TG_ERR_IO when the file cannot be
 * opened or read, TG_ERR_INVALID when it is larger than max, TG_ERR_NOMEM. */
int tg_file_read(const char *path, size_t max, char **out, size_t *len, char *errstr,
                 size_t errlen) TG_WARN_UNUSED;

/* Opens an anonymous temporary file for reading and writing, in $TMPDIR
 * or else /tmp, already unlinked: it disappears when closed or when the
 * process ends in any way, so a crash leaves nothing behind. The caller
 * closes it with fclose(). NULL with errstr "<dir>: <cause>" (TG_ERR_IO). */
FILE *tg_tmpfile(char *errstr, size_t errlen);

#endif
