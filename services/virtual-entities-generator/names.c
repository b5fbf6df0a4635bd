/* City names: the ASCII slug used in virtual ids, made from a city's key
 * (tg_city_key, the rule graph-builder follows too). It works on UTF-8 code
 * points so Cyrillic does not depend on a locale. */
#include "tg/text.h"
#include "virtual.h"
#include <string.h>

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
        long cp = tg_utf8_next(&p);
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
