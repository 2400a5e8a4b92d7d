/*  utf8.h - strict UTF-8 validation, the one copy that topics, control
    message strings and JSON all use. */
#ifndef ZMESH_UTF8_H_INCLUDED
#define ZMESH_UTF8_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/*  Length (1..4) of the well-formed UTF-8 sequence starting at `p`, which
    has `left` bytes, or 0 when there is none: no overlong forms, no
    surrogates, nothing above U+10FFFF (Unicode 15, table 3-7), so 0xC0,
    0xC1 and 0xF5..0xFF never appear. An ASCII byte, NUL included, is a
    sequence of 1: callers that refuse NUL or control characters check
    for them themselves. */
size_t zmesh__utf8_sequence(const uint8_t *p, size_t left);

#endif
