/*  json.c - JSON text to one msgpack object and back, for tools and
    scripts that speak JSON to a mesh whose payloads are msgpack.
    JSON is read by a small strict recursive-descent parser (RFC 8259, UTF-8
    only, nesting at most 64) run twice: the first pass validates and counts
    the members of every container, the second packs with msgpack-c, which
    needs each count before the members. msgpack is read by our own bounded
    reader, not msgpack_unpack, whose fixed 32-level stack could not render
    the 64-deep payloads the codec accepts. Nothing here touches the network
    or keeps state between calls, so every function is safe from any thread.
*/
#include "utf8.h"
#include "zmesh.h"

#include <locale.h>
#include <math.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_DEPTH 64

/* ------------------------------------------------------------------------ */
/*  Shared: UTF-8 and the locale's decimal point                            */

/*  strtod and printf follow LC_NUMERIC, so an application that called
    setlocale() for a locale with a decimal comma would otherwise read
    "1.5" as 1 and write "1,5". JSON always uses '.'. */
static const char *
s_decimal_point(void)
{
    const char *point = localeconv()->decimal_point;
    return point && *point ? point : ".";
}

/* ------------------------------------------------------------------------ */
/*  JSON -> msgpack                                                         */

typedef struct {
    const char *p;   // next byte to read
    const char *end; // one past the last byte
    int depth;       // containers open around p
    int err;         // first error, 0 while all is well
    // Member counts of the containers in the order they open: written by
    // the first pass, consumed by the second.
    uint32_t *counts;
    size_t counts_size;
    size_t counts_cap;
    size_t counts_next;
    msgpack_packer *pk; // NULL during the first pass
    // Scratch space for a decoded string.
    char *text;
    size_t text_size;
    size_t text_cap;
} s_parser_t;

static void s_parse_value(s_parser_t *self);

static void
s_fail(s_parser_t *self, int err)
{
    if (self->err == 0)
        self->err = err;
}

static void
s_skip_space(s_parser_t *self)
{
    while (self->p < self->end && (*self->p == ' ' || *self->p == '\t' ||
                                   *self->p == '\n' || *self->p == '\r'))
        self->p++;
}

static void
s_pack_check(s_parser_t *self, int rc)
{
    // The sbuffer's write callback fails only when realloc does.
    if (rc != 0)
        s_fail(self, ZMESH_ENOMEM);
}

static void
s_text_append(s_parser_t *self, const char *bytes, size_t size)
{
    if (self->text_cap - self->text_size < size) {
        size_t cap = self->text_cap ? self->text_cap : 64;
        while (cap - self->text_size < size)
            cap *= 2;
        char *grown = realloc(self->text, cap);
        if (!grown) {
            s_fail(self, ZMESH_ENOMEM);
            return;
        }
        self->text = grown;
        self->text_cap = cap;
    }
    memcpy(self->text + self->text_size, bytes, size);
    self->text_size += size;
}

static void
s_text_append_code_point(s_parser_t *self, uint32_t cp)
{
    char utf8[4];
    size_t n;
    if (cp < 0x80) {
        utf8[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        utf8[0] = (char)(0xC0 | (cp >> 6));
        utf8[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        utf8[0] = (char)(0xE0 | (cp >> 12));
        utf8[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        utf8[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        utf8[0] = (char)(0xF0 | (cp >> 18));
        utf8[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        utf8[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        utf8[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    s_text_append(self, utf8, n);
}

/*  Reads the 4 hex digits of a \u escape; -1 if they are not there. */
static long
s_parse_hex4(s_parser_t *self)
{
    if (self->end - self->p < 4)
        return -1;
    long value = 0;
    for (int i = 0; i < 4; i++) {
        char c = *self->p++;
        value <<= 4;
        if (c >= '0' && c <= '9')
            value |= c - '0';
        else if (c >= 'a' && c <= 'f')
            value |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            value |= c - 'A' + 10;
        else
            return -1;
    }
    return value;
}

/*  After a backslash: appends the escaped character to the scratch text. */
static void
s_parse_escape(s_parser_t *self)
{
    if (self->p >= self->end) {
        s_fail(self, ZMESH_EJSON);
        return;
    }
    char c = *self->p++;
    switch (c) {
    case '"': s_text_append(self, "\"", 1); return;
    case '\\': s_text_append(self, "\\", 1); return;
    case '/': s_text_append(self, "/", 1); return;
    case 'b': s_text_append(self, "\b", 1); return;
    case 'f': s_text_append(self, "\f", 1); return;
    case 'n': s_text_append(self, "\n", 1); return;
    case 'r': s_text_append(self, "\r", 1); return;
    case 't': s_text_append(self, "\t", 1); return;
    case 'u': break;
    default: s_fail(self, ZMESH_EJSON); return;
    }
    long unit = s_parse_hex4(self);
    if (unit < 0 || (unit >= 0xDC00 && unit <= 0xDFFF)) {
        s_fail(self, ZMESH_EJSON); // bad digits or a lone low surrogate
        return;
    }
    if (unit >= 0xD800 && unit <= 0xDBFF) {
        // A high surrogate counts only with a low one right after it.
        if (self->end - self->p < 2 || self->p[0] != '\\' ||
            self->p[1] != 'u') {
            s_fail(self, ZMESH_EJSON);
            return;
        }
        self->p += 2;
        long low = s_parse_hex4(self);
        if (low < 0xDC00 || low > 0xDFFF) {
            s_fail(self, ZMESH_EJSON);
            return;
        }
        unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
    }
    s_text_append_code_point(self, (uint32_t)unit);
}

/*  At an opening quote: decodes the string into self->text. */
static void
s_parse_string_text(s_parser_t *self)
{
    self->p++; // the opening quote
    self->text_size = 0;
    while (self->err == 0) {
        if (self->p >= self->end) {
            s_fail(self, ZMESH_EJSON); // unterminated
            return;
        }
        uint8_t c = (uint8_t)*self->p;
        if (c == '"') {
            self->p++;
            return;
        }
        if (c == '\\') {
            self->p++;
            s_parse_escape(self);
        } else if (c < 0x20) {
            s_fail(self, ZMESH_EJSON); // control characters must be escaped
        } else {
            // Copy the longest run of plain bytes at once.
            const char *start = self->p;
            while (self->p < self->end) {
                c = (uint8_t)*self->p;
                if (c == '"' || c == '\\' || c < 0x20)
                    break;
                size_t n = zmesh__utf8_sequence((const uint8_t *)self->p,
                                                (size_t)(self->end - self->p));
                if (n == 0) {
                    s_fail(self, ZMESH_EJSON);
                    return;
                }
                self->p += n;
            }
            s_text_append(self, start, (size_t)(self->p - start));
        }
    }
}

static void
s_parse_string(s_parser_t *self)
{
    s_parse_string_text(self);
    if (self->err == 0 && self->pk) {
        s_pack_check(self, msgpack_pack_str(self->pk, self->text_size));
        s_pack_check(
            self, msgpack_pack_str_body(self->pk, self->text, self->text_size));
    }
}

static void
s_parse_literal(s_parser_t *self, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(self->end - self->p) < n || memcmp(self->p, word, n) != 0) {
        s_fail(self, ZMESH_EJSON);
        return;
    }
    self->p += n;
    if (!self->pk)
        return;
    if (word[0] == 't')
        s_pack_check(self, msgpack_pack_true(self->pk));
    else if (word[0] == 'f')
        s_pack_check(self, msgpack_pack_false(self->pk));
    else
        s_pack_check(self, msgpack_pack_nil(self->pk));
}

static bool
s_is_digit(const s_parser_t *self)
{
    return self->p < self->end && *self->p >= '0' && *self->p <= '9';
}

static void
s_pack_float(s_parser_t *self, const char *start, size_t size)
{
    // strtod needs a NUL-terminated copy with the locale's decimal point.
    const char *point = s_decimal_point();
    size_t point_size = strlen(point);
    char local[128];
    size_t need = size * point_size + 1;
    char *copy = need <= sizeof local ? local : malloc(need);
    if (!copy) {
        s_fail(self, ZMESH_ENOMEM);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < size; i++) {
        if (start[i] == '.') {
            memcpy(copy + n, point, point_size);
            n += point_size;
        } else
            copy[n++] = start[i];
    }
    copy[n] = '\0';
    // Out of range gives +-HUGE_VAL or 0 with ERANGE: both are the nearest
    // doubles, which is what a number's JSON text means to most readers.
    double value = strtod(copy, NULL);
    if (copy != local)
        free(copy);
    s_pack_check(self, msgpack_pack_double(self->pk, value));
}

/*  number = [ minus ] int [ frac ] [ exp ]; int = zero / ( digit1-9 *DIGIT ) */
static void
s_parse_number(s_parser_t *self)
{
    const char *start = self->p;
    bool negative = false;
    if (*self->p == '-') {
        negative = true;
        self->p++;
    }
    if (!s_is_digit(self)) {
        s_fail(self, ZMESH_EJSON);
        return;
    }
    // Accumulate the integer part, noting whether it still fits 64 bits.
    uint64_t magnitude = 0;
    bool fits = true;
    if (*self->p == '0') {
        self->p++;
        if (s_is_digit(self)) {
            s_fail(self, ZMESH_EJSON); // leading zero
            return;
        }
    } else {
        while (s_is_digit(self)) {
            unsigned digit = (unsigned)(*self->p++ - '0');
            if (magnitude > (UINT64_MAX - digit) / 10)
                fits = false;
            else
                magnitude = magnitude * 10 + digit;
        }
    }
    bool integer = true;
    if (self->p < self->end && *self->p == '.') {
        integer = false;
        self->p++;
        if (!s_is_digit(self)) {
            s_fail(self, ZMESH_EJSON);
            return;
        }
        while (s_is_digit(self))
            self->p++;
    }
    if (self->p < self->end && (*self->p == 'e' || *self->p == 'E')) {
        integer = false;
        self->p++;
        if (self->p < self->end && (*self->p == '+' || *self->p == '-'))
            self->p++;
        if (!s_is_digit(self)) {
            s_fail(self, ZMESH_EJSON);
            return;
        }
        while (s_is_digit(self))
            self->p++;
    }
    if (!self->pk)
        return;
    if (integer && fits && !negative)
        s_pack_check(self, msgpack_pack_uint64(self->pk, magnitude));
    else if (integer && fits && magnitude <= (uint64_t)INT64_MAX + 1) {
        // -magnitude computed in unsigned arithmetic, so INT64_MIN works.
        int64_t value = (int64_t)(0 - magnitude);
        s_pack_check(self, msgpack_pack_int64(self->pk, value));
    } else
        s_pack_float(self, start, (size_t)(self->p - start));
}

/*  Reserves (first pass) or fetches (second pass) the member count of the
    container opening now; returns its index in self->counts. */
static size_t
s_container_open(s_parser_t *self)
{
    if (self->pk)
        return self->counts_next++;
    if (self->counts_size == self->counts_cap) {
        size_t cap = self->counts_cap ? self->counts_cap * 2 : 16;
        uint32_t *grown = realloc(self->counts, cap * sizeof *grown);
        if (!grown) {
            s_fail(self, ZMESH_ENOMEM);
            return 0;
        }
        self->counts = grown;
        self->counts_cap = cap;
    }
    self->counts[self->counts_size] = 0;
    return self->counts_size++;
}

/*  Counts one more member in the first pass. msgpack holds at most
    2^32 - 1 members, which JSON text below 4 GiB cannot exceed; the check
    is for the rest. */
static void
s_container_count(s_parser_t *self, size_t index)
{
    if (self->pk || self->err)
        return;
    if (self->counts[index] == UINT32_MAX)
        s_fail(self, ZMESH_EJSON);
    else
        self->counts[index]++;
}

static void
s_parse_array(s_parser_t *self)
{
    self->p++; // '['
    size_t index = s_container_open(self);
    if (self->err)
        return;
    if (self->pk)
        s_pack_check(self, msgpack_pack_array(self->pk, self->counts[index]));
    s_skip_space(self);
    if (self->p < self->end && *self->p == ']') {
        self->p++;
        return;
    }
    while (self->err == 0) {
        s_parse_value(self);
        s_container_count(self, index);
        s_skip_space(self);
        if (self->err || self->p >= self->end)
            break;
        char c = *self->p++;
        if (c == ']')
            return;
        if (c != ',')
            break;
    }
    s_fail(self, ZMESH_EJSON);
}

static void
s_parse_object(s_parser_t *self)
{
    self->p++; // '{'
    size_t index = s_container_open(self);
    if (self->err)
        return;
    if (self->pk)
        s_pack_check(self, msgpack_pack_map(self->pk, self->counts[index]));
    s_skip_space(self);
    if (self->p < self->end && *self->p == '}') {
        self->p++;
        return;
    }
    while (self->err == 0) {
        s_skip_space(self);
        if (self->p >= self->end || *self->p != '"')
            break; // keys are strings; this also rejects a trailing comma
        s_parse_string(self);
        s_skip_space(self);
        if (self->err || self->p >= self->end || *self->p != ':')
            break;
        self->p++;
        s_parse_value(self);
        s_container_count(self, index);
        s_skip_space(self);
        if (self->err || self->p >= self->end)
            break;
        char c = *self->p++;
        if (c == '}')
            return;
        if (c != ',')
            break;
    }
    s_fail(self, ZMESH_EJSON);
}

static void
s_parse_value(s_parser_t *self)
{
    s_skip_space(self);
    if (self->err)
        return;
    if (self->p >= self->end) {
        s_fail(self, ZMESH_EJSON);
        return;
    }
    switch (*self->p) {
    case '{':
    case '[':
        // An explicit counter bounds the recursion, whatever the input.
        if (++self->depth > S_MAX_DEPTH) {
            s_fail(self, ZMESH_EJSON);
            return;
        }
        if (*self->p == '{')
            s_parse_object(self);
        else
            s_parse_array(self);
        self->depth--;
        break;
    case '"': s_parse_string(self); break;
    case 't': s_parse_literal(self, "true"); break;
    case 'f': s_parse_literal(self, "false"); break;
    case 'n': s_parse_literal(self, "null"); break;
    default: s_parse_number(self); break;
    }
}

/*  One pass over the whole text: exactly one value, with only whitespace
    around it. */
static int
s_parse_document(s_parser_t *self, const char *json, size_t json_size)
{
    self->p = json;
    self->end = json + json_size;
    self->depth = 0;
    s_parse_value(self);
    s_skip_space(self);
    if (self->err == 0 && self->p != self->end)
        s_fail(self, ZMESH_EJSON);
    return self->err;
}

int
zmesh_json_to_msgpack(const char *json, size_t json_size, void **out,
                      size_t *out_size)
{
    if (!out || !out_size)
        return ZMESH_EINVAL;
    *out = NULL;
    *out_size = 0;
    if (!json)
        return ZMESH_EINVAL;

    s_parser_t parser = {0};
    int rc = s_parse_document(&parser, json, json_size);
    if (rc == 0) {
        msgpack_sbuffer sbuf;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sbuf);
        msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
        parser.pk = &pk;
        parser.counts_next = 0;
        rc = s_parse_document(&parser, json, json_size);
        if (rc == 0) {
            // A valid value always packs at least one byte, so data is set;
            // the sbuffer allocates with realloc, so free() releases it.
            *out_size = sbuf.size;
            *out = msgpack_sbuffer_release(&sbuf);
        }
        msgpack_sbuffer_destroy(&sbuf);
    }
    free(parser.counts);
    free(parser.text);
    return rc;
}

/* ------------------------------------------------------------------------ */
/*  msgpack -> JSON                                                         */

typedef struct {
    const uint8_t *p; // next byte to read
    size_t left;      // bytes left
    char *data;       // output, NUL-terminated when done
    size_t size;
    size_t cap;
    size_t limit; // the most output we agree to produce
    int err;
} s_render_t;

static void s_render_value(s_render_t *self, int depth);

static void
s_render_fail(s_render_t *self, int err)
{
    if (self->err == 0)
        self->err = err;
}

static void
s_put(s_render_t *self, const char *bytes, size_t size)
{
    if (self->err)
        return;
    // Checked on every call, so size < limit always holds (see the limit's
    // comment in zmesh_msgpack_to_json).
    if (self->limit - self->size <= size) {
        s_render_fail(self, ZMESH_ENOMEM);
        return;
    }
    if (self->cap - self->size <= size) { // keep room for the NUL
        size_t cap = self->cap ? self->cap : 256;
        while (cap - self->size <= size)
            cap *= 2;
        char *grown = realloc(self->data, cap);
        if (!grown) {
            s_render_fail(self, ZMESH_ENOMEM);
            return;
        }
        self->data = grown;
        self->cap = cap;
    }
    memcpy(self->data + self->size, bytes, size);
    self->size += size;
}

static void
s_puts(s_render_t *self, const char *text)
{
    s_put(self, text, strlen(text));
}

/*  Takes `n` bytes from the input; NULL (and EPAYLOAD) if they are not all
    there. */
static const uint8_t *
s_take(s_render_t *self, size_t n)
{
    if (self->err)
        return NULL;
    if (self->left < n) {
        s_render_fail(self, ZMESH_EPAYLOAD);
        return NULL;
    }
    const uint8_t *bytes = self->p;
    self->p += n;
    self->left -= n;
    return bytes;
}

/*  Reads a big-endian unsigned integer of `n` bytes (1, 2, 4 or 8). */
static uint64_t
s_take_uint(s_render_t *self, size_t n)
{
    const uint8_t *bytes = s_take(self, n);
    uint64_t value = 0;
    if (bytes)
        for (size_t i = 0; i < n; i++)
            value = (value << 8) | bytes[i];
    return value;
}

static void
s_render_escaped(s_render_t *self, const uint8_t *bytes, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    s_put(self, "\"", 1);
    size_t i = 0;
    while (i < size && self->err == 0) {
        // Copy the longest run that needs no escaping at once.
        size_t start = i;
        size_t n;
        while (i < size && bytes[i] >= 0x20 && bytes[i] != '"' &&
               bytes[i] != '\\' && bytes[i] != 0x7F &&
               (n = zmesh__utf8_sequence(bytes + i, size - i)) != 0)
            i += n;
        s_put(self, (const char *)bytes + start, i - start);
        if (i == size)
            break;
        uint8_t c = bytes[i++];
        switch (c) {
        case '"': s_put(self, "\\\"", 2); break;
        case '\\': s_put(self, "\\\\", 2); break;
        case '\b': s_put(self, "\\b", 2); break;
        case '\f': s_put(self, "\\f", 2); break;
        case '\n': s_put(self, "\\n", 2); break;
        case '\r': s_put(self, "\\r", 2); break;
        case '\t': s_put(self, "\\t", 2); break;
        default:
            if (c < 0x20 || c == 0x7F) {
                char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                s_put(self, u, sizeof u);
            } else {
                // Not UTF-8: U+FFFD per byte keeps the output valid JSON.
                s_put(self, "\xEF\xBF\xBD", 3);
            }
        }
    }
    s_put(self, "\"", 1);
}

static void
s_render_base64(s_render_t *self, const uint8_t *bytes, size_t size)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    s_put(self, "\"", 1);
    for (size_t i = 0; i < size && self->err == 0; i += 3) {
        uint32_t chunk = (uint32_t)bytes[i] << 16;
        if (i + 1 < size)
            chunk |= (uint32_t)bytes[i + 1] << 8;
        if (i + 2 < size)
            chunk |= bytes[i + 2];
        char quad[4] = {alphabet[(chunk >> 18) & 63],
                        alphabet[(chunk >> 12) & 63],
                        i + 1 < size ? alphabet[(chunk >> 6) & 63] : '=',
                        i + 2 < size ? alphabet[chunk & 63] : '='};
        s_put(self, quad, sizeof quad);
    }
    s_put(self, "\"", 1);
}

/*  Formats `value` in as few significant digits as read back to the same
    value (`single`: as a float32), always as a JSON number with a '.' or an
    exponent, so it is read back as a float and not an integer. */
static void
s_render_float(s_render_t *self, double value, bool single)
{
    if (!isfinite(value)) {
        s_puts(self, "null"); // JSON has no NaN or infinity
        return;
    }
    char text[64];
    int lowest = single ? 6 : 15, highest = single ? 9 : 17;
    for (int precision = lowest; precision <= highest; precision++) {
        snprintf(text, sizeof text, "%.*g", precision, value);
        if (single ? strtof(text, NULL) == (float)value
                   : strtod(text, NULL) == value)
            break;
    }
    // Back to JSON: the locale's decimal point becomes '.'.
    const char *point = s_decimal_point();
    size_t point_size = strlen(point);
    char json[72];
    size_t n = 0;
    bool has_point_or_exponent = false;
    for (const char *c = text; *c;) {
        if (strncmp(c, point, point_size) == 0) {
            json[n++] = '.';
            c += point_size;
            has_point_or_exponent = true;
        } else {
            if (*c == 'e')
                has_point_or_exponent = true;
            json[n++] = *c++;
        }
    }
    if (!has_point_or_exponent) {
        json[n++] = '.';
        json[n++] = '0';
    }
    s_put(self, json, n);
}

static void
s_render_int(s_render_t *self, int64_t value)
{
    char text[24];
    int n = snprintf(text, sizeof text, "%lld", (long long)value);
    s_put(self, text, (size_t)n);
}

static void
s_render_uint(s_render_t *self, uint64_t value)
{
    char text[24];
    int n = snprintf(text, sizeof text, "%llu", (unsigned long long)value);
    s_put(self, text, (size_t)n);
}

/*  A map key: strings stay as they are; anything else is rendered as JSON
    text first and that text becomes the key string. */
static void
s_render_key(s_render_t *self, int depth)
{
    if (self->left > 0 && ((self->p[0] >= 0xA0 && self->p[0] <= 0xBF) ||
                           (self->p[0] >= 0xD9 && self->p[0] <= 0xDB))) {
        s_render_value(self, depth);
        return;
    }
    size_t start = self->size;
    // A key does not open a JSON level; its own containers count from here.
    s_render_value(self, depth);
    if (self->err)
        return;
    size_t size = self->size - start;
    char *text = malloc(size ? size : 1);
    if (!text) {
        s_render_fail(self, ZMESH_ENOMEM);
        return;
    }
    memcpy(text, self->data + start, size);
    self->size = start;
    s_render_escaped(self, (const uint8_t *)text, size);
    free(text);
}

/*  Opens a JSON level; false (and EPAYLOAD) past the depth limit. */
static bool
s_render_nest(s_render_t *self, int depth)
{
    if (depth >= S_MAX_DEPTH) {
        s_render_fail(self, ZMESH_EPAYLOAD);
        return false;
    }
    return true;
}

static void
s_render_array(s_render_t *self, uint64_t count, int depth)
{
    if (!s_render_nest(self, depth))
        return;
    // Each element takes at least one byte: refuse impossible counts now
    // instead of looping over them.
    if (count > self->left) {
        s_render_fail(self, ZMESH_EPAYLOAD);
        return;
    }
    s_put(self, "[", 1);
    for (uint64_t i = 0; i < count && self->err == 0; i++) {
        if (i > 0)
            s_put(self, ",", 1);
        s_render_value(self, depth + 1);
    }
    s_put(self, "]", 1);
}

static void
s_render_map(s_render_t *self, uint64_t count, int depth)
{
    if (!s_render_nest(self, depth))
        return;
    if (count > self->left / 2) {
        s_render_fail(self, ZMESH_EPAYLOAD);
        return;
    }
    s_put(self, "{", 1);
    for (uint64_t i = 0; i < count && self->err == 0; i++) {
        if (i > 0)
            s_put(self, ",", 1);
        s_render_key(self, depth + 1);
        s_put(self, ":", 1);
        s_render_value(self, depth + 1);
    }
    s_put(self, "}", 1);
}

static void
s_render_str(s_render_t *self, size_t size)
{
    const uint8_t *bytes = s_take(self, size);
    if (bytes)
        s_render_escaped(self, bytes, size);
}

static void
s_render_bin(s_render_t *self, size_t size)
{
    const uint8_t *bytes = s_take(self, size);
    if (bytes)
        s_render_base64(self, bytes, size);
}

/*  An ext becomes {"ext":TYPE,"base64":"..."}: a JSON object, so it
    counts as a level, which keeps every output within the parser's limit. */
static void
s_render_ext(s_render_t *self, size_t size, int depth)
{
    if (!s_render_nest(self, depth))
        return;
    const uint8_t *type = s_take(self, 1);
    const uint8_t *bytes = s_take(self, size);
    if (!type || !bytes)
        return;
    s_puts(self, "{\"ext\":");
    s_render_int(self, (int8_t)type[0]);
    s_puts(self, ",\"base64\":");
    s_render_base64(self, bytes, size);
    s_put(self, "}", 1);
}

/*  Renders the next object; `depth` is the number of JSON levels around
    it. Formats: github.com/msgpack/msgpack/blob/master/spec.md */
static void
s_render_value(s_render_t *self, int depth)
{
    const uint8_t *tag = s_take(self, 1);
    if (!tag)
        return;
    uint8_t c = *tag;
    if (c <= 0x7F)
        s_render_uint(self, c);
    else if (c <= 0x8F)
        s_render_map(self, c & 0x0F, depth);
    else if (c <= 0x9F)
        s_render_array(self, c & 0x0F, depth);
    else if (c <= 0xBF)
        s_render_str(self, c & 0x1F);
    else if (c >= 0xE0)
        s_render_int(self, (int8_t)c);
    else
        switch (c) {
        case 0xC0: s_puts(self, "null"); break;
        case 0xC2: s_puts(self, "false"); break;
        case 0xC3: s_puts(self, "true"); break;
        case 0xC4: s_render_bin(self, s_take_uint(self, 1)); break;
        case 0xC5: s_render_bin(self, s_take_uint(self, 2)); break;
        case 0xC6: s_render_bin(self, s_take_uint(self, 4)); break;
        case 0xC7: s_render_ext(self, s_take_uint(self, 1), depth); break;
        case 0xC8: s_render_ext(self, s_take_uint(self, 2), depth); break;
        case 0xC9: s_render_ext(self, s_take_uint(self, 4), depth); break;
        case 0xCA: {
            uint32_t bits = (uint32_t)s_take_uint(self, 4);
            float f;
            memcpy(&f, &bits, sizeof f);
            if (self->err == 0)
                s_render_float(self, f, true);
            break;
        }
        case 0xCB: {
            uint64_t bits = s_take_uint(self, 8);
            double d;
            memcpy(&d, &bits, sizeof d);
            if (self->err == 0)
                s_render_float(self, d, false);
            break;
        }
        case 0xCC: s_render_uint(self, s_take_uint(self, 1)); break;
        case 0xCD: s_render_uint(self, s_take_uint(self, 2)); break;
        case 0xCE: s_render_uint(self, s_take_uint(self, 4)); break;
        case 0xCF: s_render_uint(self, s_take_uint(self, 8)); break;
        case 0xD0: s_render_int(self, (int8_t)s_take_uint(self, 1)); break;
        case 0xD1: s_render_int(self, (int16_t)s_take_uint(self, 2)); break;
        case 0xD2: s_render_int(self, (int32_t)s_take_uint(self, 4)); break;
        case 0xD3: s_render_int(self, (int64_t)s_take_uint(self, 8)); break;
        case 0xD4: s_render_ext(self, 1, depth); break;
        case 0xD5: s_render_ext(self, 2, depth); break;
        case 0xD6: s_render_ext(self, 4, depth); break;
        case 0xD7: s_render_ext(self, 8, depth); break;
        case 0xD8: s_render_ext(self, 16, depth); break;
        case 0xD9: s_render_str(self, s_take_uint(self, 1)); break;
        case 0xDA: s_render_str(self, s_take_uint(self, 2)); break;
        case 0xDB: s_render_str(self, s_take_uint(self, 4)); break;
        case 0xDC: s_render_array(self, s_take_uint(self, 2), depth); break;
        case 0xDD: s_render_array(self, s_take_uint(self, 4), depth); break;
        case 0xDE: s_render_map(self, s_take_uint(self, 2), depth); break;
        case 0xDF: s_render_map(self, s_take_uint(self, 4), depth); break;
        default: s_render_fail(self, ZMESH_EPAYLOAD); break; // 0xC1
        }
}

int
zmesh_msgpack_to_json(const void *msgpack, size_t size, char **out)
{
    if (!out)
        return ZMESH_EINVAL;
    *out = NULL;
    if (!msgpack)
        return ZMESH_EINVAL;

    s_render_t render = {.p = msgpack, .left = size};
    // Keys that are themselves maps with non-string keys are escaped once
    // per level, so 128 bytes of nested keys could ask for 2^64 bytes of
    // text. Ordinary payloads stay below about 11 bytes of JSON per byte
    // of msgpack (an ext as a key is the worst), so this limit stops only
    // such bombs.
    render.limit =
        size > (SIZE_MAX - 65536) / 32 ? SIZE_MAX : size * 32 + 65536;
    s_render_value(&render, 0);
    if (render.err == 0 && render.left != 0)
        s_render_fail(&render, ZMESH_EPAYLOAD); // more than one object
    s_put(&render, "", 0);
    if (render.err) {
        free(render.data);
        return render.err;
    }
    render.data[render.size] = '\0';
    *out = render.data;
    return 0;
}
