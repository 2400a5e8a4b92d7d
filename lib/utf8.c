/*  utf8.c - strict UTF-8 validation. Topics, strings in control messages
    and JSON text all come from outside and must be well-formed UTF-8 by
    the same rule, so the rule lives here once. It decodes nothing and
    allocates nothing.
*/
#include "utf8.h"

size_t
zmesh__utf8_sequence(const uint8_t *p, size_t left)
{
    if (left == 0)
        return 0;
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF; // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; // overlong below U+0800
        else if (c == 0xED)
            hi = 0x9F; // UTF-16 surrogates U+D800..U+DFFF
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; // overlong below U+10000
        else if (c == 0xF4)
            hi = 0x8F; // above U+10FFFF
    } else
        return 0;
    if (left < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}
