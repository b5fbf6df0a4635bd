/* City names: the normal form used to match a directory city with the
 * city_name of real stops, and the ASCII slug used in virtual ids. Both work
 * on UTF-8 code points so Cyrillic case folding does not depend on a locale. */
#include "virtual.h"
#include <string.h>

/* Decodes one UTF-8 sequence at *p; returns the code point or -1. */
static long utf8_next(const unsigned char **p) {
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

/* Appends cp as UTF-8; returns 0, or -1 when out is full. */
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

/* Lower case for Latin, Russian and the Yakut letters Ҕ Ҥ Ө Һ Ү; ё → е. */
static long fold(long cp) {
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

static int is_separator(long cp) {
    return cp == ' ' || cp == '-' || cp == '\t' || cp == 0x00A0 /* nbsp */ || cp == 0x2010 ||
           cp == 0x2011 || cp == 0x2013 || cp == 0x2014; /* dashes */
}

/* Skips a leading "г." or "г " (the abbreviation of город, "town"). */
static const unsigned char *skip_town_prefix(const unsigned char *p) {
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    /* "г" and "Г" are U+0433 and U+0413: D0 B3 / D0 93 */
    if (p[0] == 0xD0 && (p[1] == 0xB3 || p[1] == 0x93) && (p[2] == '.' || p[2] == ' ')) {
        p += 3;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
    }
    return p;
}

int virtual_normalize(const char *name, char *out, size_t outlen) {
    const unsigned char *p = skip_town_prefix((const unsigned char *)name);
    size_t n = 0;
    int pending_space = 0;
    if (outlen == 0) {
        return TG_ERR_INVALID;
    }
    while (*p) {
        long cp = utf8_next(&p);
        if (cp < 0) {
            return TG_ERR_INVALID;
        }
        if (is_separator(cp)) {
            pending_space = n > 0;
            continue;
        }
        if ((pending_space && utf8_put(out, outlen, &n, ' ')) ||
            utf8_put(out, outlen, &n, fold(cp))) {
            return TG_ERR_INVALID;
        }
        pending_space = 0;
    }
    out[n] = '\0';
    return n ? TG_OK : TG_ERR_INVALID;
}

/* BGN/PCGN simplified, indexed by code point - 0x0430 (а..я). */
static const char *const cyrillic[32] = {
    "a", "b", "v", "g", "d", "e",  "zh", "z",  "i",  "y",    "k", "l", "m", "n", "o",  "p",
    "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "",  "y", "",  "e", "yu", "ya",
};

/* The ASCII for cp ("" for ъ/ь), or NULL for anything else, which becomes
 * a word break. ascii is scratch space for letters and digits. */
static const char *translit_cp(long cp, char ascii[2]) {
    if (cp >= 0x0430 && cp <= 0x044F) {
        return cyrillic[cp - 0x0430];
    }
    switch (cp) {
    case 0x0451:
        return "e"; /* ё, should normalisation have left one */
    case 0x0495:
        return "gh"; /* ҕ */
    case 0x04A5:
        return "ng"; /* ҥ */
    case 0x04AF:
        return "u"; /* ү */
    case 0x04BB:
        return "h"; /* һ */
    case 0x04E9:
        return "o"; /* ө */
    default:
        break;
    }
    if ((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9')) {
        ascii[0] = (char)cp;
        ascii[1] = '\0';
        return ascii;
    }
    if (cp >= 'A' && cp <= 'Z') {
        ascii[0] = (char)(cp + 32);
        ascii[1] = '\0';
        return ascii;
    }
    return NULL; /* a separator or a character without a transliteration */
}

int virtual_translit(const char *normalized, char *out, size_t outlen) {
    const unsigned char *p = (const unsigned char *)normalized;
    size_t n = 0;
    int pending_dash = 0;
    while (*p) {
        long cp = utf8_next(&p);
        if (cp < 0) {
            return TG_ERR_INVALID;
        }
        char ascii[2];
        const char *t = translit_cp(cp, ascii);
        if (!t) {
            pending_dash = n > 0;
            continue;
        }
        size_t tl = strlen(t);
        if (!tl) {
            continue; /* ъ, ь */
        }
        if (n + pending_dash + tl >= outlen) {
            return TG_ERR_INVALID;
        }
        if (pending_dash) {
            out[n++] = '-';
        }
        memcpy(out + n, t, tl);
        n += tl;
        pending_dash = 0;
    }
    if (n >= outlen) {
        return TG_ERR_INVALID;
    }
    out[n] = '\0';
    return n ? TG_OK : TG_ERR_INVALID;
}
