/* JSON string escaping, UTF-8 checks and the city-name rule (see text.h). */
#include "tg/text.h"

#include <string.h>

/* ---- JSON strings ------------------------------------------------------ */

/* The escape of c (at most 6 bytes) into esc; 0 when c is copied as is. */
static size_t json_escape_char(unsigned char c, char esc[6]) {
    static const char hex[] = "0123456789abcdef";
    if (c == '"' || c == '\\') {
        esc[0] = '\\';
        esc[1] = (char)c;
        return 2;
    }
    if (c < 0x20) {
        memcpy(esc, "\\u00", 4);
        esc[4] = hex[c >> 4];
        esc[5] = hex[c & 15];
        return 6;
    }
    return 0;
}

int tg_json_append_str(tg_buf_t *b, const char *s) {
    int rc = tg_buf_append(b, "\"", 1);
    const char *run = s;
    for (; *s && rc == TG_OK; s++) {
        char esc[6];
        size_t n = json_escape_char((unsigned char)*s, esc);
        if (n) {
            rc = tg_buf_append(b, run, (size_t)(s - run));
            if (rc == TG_OK) {
                rc = tg_buf_append(b, esc, n);
            }
            run = s + 1;
        }
    }
    if (rc == TG_OK) {
        rc = tg_buf_append(b, run, (size_t)(s - run));
    }
    return rc ? rc : tg_buf_append(b, "\"", 1);
}

/* Bytes of the UTF-8 sequence that lead byte c starts (1 for a stray byte). */
static size_t utf8_len(unsigned char c) {
    return c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
}

size_t tg_json_escape(char *out, size_t cap, const char *s) {
    size_t n = 0;
    if (cap == 0) {
        return 0;
    }
    while (*s) {
        char esc[6];
        size_t e = json_escape_char((unsigned char)*s, esc);
        size_t len = e ? 1 : utf8_len((unsigned char)*s);
        if (!e && strnlen(s, len) < len) {
            len = 1; /* a truncated sequence at the end: copied byte by byte */
        }
        if (n + (e ? e : len) + 1 > cap) {
            break;
        }
        memcpy(out + n, e ? esc : s, e ? e : len);
        n += e ? e : len;
        s += len;
    }
    out[n] = '\0';
    return n;
}

/* ---- UTF-8 ------------------------------------------------------------- */

long tg_utf8_next(const unsigned char **p) {
    const unsigned char *s = *p;
    long cp;
    int extra;
    if (s[0] < 0x80) {
        *p = s + 1;
        return s[0];
    }
    if ((s[0] & 0xE0) == 0xC0) {
        cp = s[0] & 0x1F;
        extra = 1;
    } else if ((s[0] & 0xF0) == 0xE0) {
        cp = s[0] & 0x0F;
        extra = 2;
    } else if ((s[0] & 0xF8) == 0xF0) {
        cp = s[0] & 0x07;
        extra = 3;
    } else {
        return -1;
    }
    for (int i = 1; i <= extra; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return -1;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    *p = s + extra + 1;
    return cp;
}

int tg_utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (tg_utf8_next(&p) < 0) {
            return 0;
        }
    }
    return 1;
}

void tg_utf8_truncate(char *s, size_t max) {
    size_t n = strlen(s);
    if (n <= max) {
        return;
    }
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) {
        max--;
    }
    s[max] = '\0';
}

/* ---- city names -------------------------------------------------------- */

/* Appends cp as UTF-8; returns 0, or -1 when out (with its NUL) is full. */
static int utf8_put(char *out, size_t outlen, size_t *n, long cp) {
    unsigned char buf[4];
    size_t len;
    if (cp < 0x80) {
        buf[0] = (unsigned char)cp;
        len = 1;
    } else if (cp < 0x800) {
        buf[0] = (unsigned char)(0xC0 | (cp >> 6));
        buf[1] = (unsigned char)(0x80 | (cp & 0x3F));
        len = 2;
    } else if (cp < 0x10000) {
        buf[0] = (unsigned char)(0xE0 | (cp >> 12));
        buf[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (unsigned char)(0x80 | (cp & 0x3F));
        len = 3;
    } else {
        buf[0] = (unsigned char)(0xF0 | (cp >> 18));
        buf[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        buf[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        buf[3] = (unsigned char)(0x80 | (cp & 0x3F));
        len = 4;
    }
    if (*n + len >= outlen) {
        return -1;
    }
    memcpy(out + *n, buf, len);
    *n += len;
    return 0;
}

/* Lower case for Latin, Russian and the Yakut letters Ҕ Ҥ Ү Һ Ө; ё → е. */
static long city_fold(long cp) {
    if (cp >= 'A' && cp <= 'Z') {
        return cp + 32;
    }
    if (cp >= 0x0410 && cp <= 0x042F) { /* А..Я */
        return cp + 0x20;
    }
    if (cp == 0x0401 || cp == 0x0451) { /* Ё ё */
        return 0x0435;
    }
    if (cp == 0x0494 || cp == 0x04A4 || cp == 0x04AE || cp == 0x04BA || cp == 0x04E8) {
        return cp + 1;
    }
    return cp;
}

/* Blanks (ASCII white space, no-break space) and hyphens or dashes. */
static int city_separator(long cp) {
    return cp == ' ' || (cp >= '\t' && cp <= '\r') || cp == '-' || cp == 0x00A0 || cp == 0x2010 ||
           cp == 0x2011 || cp == 0x2013 || cp == 0x2014;
}

/* Settlement types, as they read after steps 1 and 2 of the rule. */
static const char *const city_types[] = {"г.", "г ", "пос.", "пгт.", "пгт ", "с.", "п."};

int tg_city_key(const char *name, char *out, size_t outlen) {
    const unsigned char *p = (const unsigned char *)name;
    size_t n = 0;
    int pending_space = 0;
    if (outlen == 0) {
        return TG_ERR_INVALID;
    }
    out[0] = '\0';
    if (!name) {
        return TG_ERR_INVALID;
    }
    while (*p) {
        long cp = tg_utf8_next(&p);
        if (cp < 0) {
            out[0] = '\0';
            return TG_ERR_INVALID;
        }
        if (city_separator(cp)) {
            pending_space = n > 0;
            continue;
        }
        if ((pending_space && utf8_put(out, outlen, &n, ' ')) ||
            utf8_put(out, outlen, &n, city_fold(cp))) {
            out[0] = '\0';
            return TG_ERR_INVALID;
        }
        pending_space = 0;
    }
    out[n] = '\0';
    for (size_t i = 0; i < sizeof city_types / sizeof city_types[0]; i++) {
        size_t t = strlen(city_types[i]);
        if (n >= t && !strncmp(out, city_types[i], t)) {
            size_t skip = t + (out[t] == ' ');
            memmove(out, out + skip, n - skip + 1);
            n -= skip;
            break;
        }
    }
    return n ? TG_OK : TG_ERR_INVALID;
}
