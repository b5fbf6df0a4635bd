/* Layer 0 (base).
 * Text. JSON string escaping, UTF-8 checks, and the one rule
 * that decides whether two city names are the same city.
 *
 * The city rule (tg_city_key), used by virtual-entities-generator to match a
 * directory city with real stops and by graph-builder to group a city's
 * stops for transfers:
 *   1. letters are lower-cased (Latin, Russian, and the Yakut letters
 *      Ҕ Ҥ Ө Һ Ү) and ё becomes е;
 *   2. every run of blanks, hyphens and dashes becomes one space, and
 *      leading or trailing ones go;
 *   3. one leading settlement type goes: "г.", "г ", "пос.", "пгт.", "пгт ",
 *      "с.", "п.".
 * Why hyphens count as spaces: "Усть-Мая" and "Усть Мая" are spellings of
 * one place, and sources write both; keeping the hyphen (graph-builder's old
 * rule) would split one city in two, and the ids of virtual entities are
 * already made from the spaced form ("усть мая" → "ust-maya"). Why the
 * settlement types go: OData sources prefix them ("г. Нерюнгри"), the cities
 * directory never does. Everything else (digits, "№", other scripts) is kept. */
#ifndef TG_TEXT_H
#define TG_TEXT_H

#include "tg/buf.h"
#include "tg/error.h"
#include <stddef.h>

/* ---- JSON strings ----------------------------------------------------- */
/* One escaping for every JSON we write by hand (logs, the canonical data
 * hashed by odata-sync-worker, the graph in Redis): '"' and '\' get a
 * backslash, control characters below 0x20 become \u00xx (lower-case hex),
 * everything else, UTF-8 included, is copied. The data hash depends on this
 * form: changing it changes every dataset's hash. */

/* Appends s to b as a quoted JSON string. TG_ERR_NOMEM leaves b as a
 * prefix of the string (the caller drops b). */
int tg_json_append_str(tg_buf_t *b, const char *s) TG_WARN_UNUSED;

/* Writes the escaped body of s (no quotes) into out, NUL-terminated, and
 * returns its length. When out is too small the text ends early, before a
 * whole escape or UTF-8 sequence that does not fit. */
size_t tg_json_escape(char *out, size_t cap, const char *s);

/* ---- UTF-8 ------------------------------------------------------------ */

/* 1 when s (NUL-terminated) is well-formed UTF-8 (lead and continuation
 * bytes; overlongs are not checked), 0 otherwise. */
int tg_utf8_valid(const char *s);

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
void tg_utf8_truncate(char *s, size_t max);

/* Decodes the sequence at *p and moves *p past it; returns the code point,
 * or -1 (p unchanged) for a malformed sequence. *p must not be at the NUL. */
long tg_utf8_next(const unsigned char **p);

/* ---- city names ------------------------------------------------------- */

/* Writes the key of a city name by the rule above ("г. Усть-Мая" →
 * "усть мая"); a key is never longer than the name. Returns TG_OK, or
 * TG_ERR_INVALID (out = "") for NULL, malformed UTF-8, a name with nothing
 * left, or a key that does not fit in outlen. */
int tg_city_key(const char *name, char *out, size_t outlen) TG_WARN_UNUSED;

#endif
