/*  topic.c - topic and pattern syntax (proto/wire.md#topics), matching,
    intersection of two patterns, the ZeroMQ prefix filter of a pattern,
    and the subscription index: a trie over tokens that answers "does any
    pattern match this topic" without allocating and without looking at
    patterns that cannot match. '*' and '>' are wildcards only as whole
    tokens; inside a token ("a.b*c") they are rejected in topics and
    patterns alike. NATS's naming rules reserve both characters for
    wildcards (nats-server itself would read them literally); forbidding
    them keeps "a.b*c" from looking like a glob that matches "a.bxc". */
#include "topic.h"
#include "utf8.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Tokens are at least one byte plus a '.', so a topic has at most this
   many tokens. */
#define S_TOKENS_MAX ((ZMESH_TOPIC_MAX + 1) / 2)

/*  The shared syntax walk. Returns true when `s` is a valid pattern (when
    `wildcards`) or a valid topic, '$' prefix included. */
static bool
s_syntax_ok(const char *s, size_t size, bool wildcards)
{
    if (!s || size == 0 || size > ZMESH_TOPIC_MAX)
        return false;
    const unsigned char *p = (const unsigned char *)s;
    size_t token_start = 0;
    bool full_wildcard_seen = false; /* a '>' token was closed */
    size_t i = 0;
    while (i <= size) {
        if (i == size || p[i] == '.') {
            size_t length = i - token_start;
            if (length == 0 || full_wildcard_seen)
                return false;
            if (length == 1 &&
                (p[token_start] == '*' || p[token_start] == '>')) {
                if (!wildcards)
                    return false;
                full_wildcard_seen = p[token_start] == '>';
            } else if (memchr(p + token_start, '*', length) ||
                       memchr(p + token_start, '>', length))
                return false;
            token_start = i + 1;
            i++;
            continue;
        }
        unsigned char c = p[i];
        if (c < 0x80) {
            if (c <= 0x20 || c == 0x7F)
                return false;
            i++;
            continue;
        }
        size_t length = zmesh__utf8_sequence((const uint8_t *)p + i, size - i);
        if (length == 0)
            return false;
        i += length;
    }
    return true;
}

int
zmesh__topic_check(const char *topic, size_t size)
{
    if (!s_syntax_ok(topic, size, false))
        return ZMESH_ETOPIC;
    return topic[0] == '$' ? ZMESH_ERESERVED : 0;
}

int
zmesh__pattern_check(const char *pattern, size_t size)
{
    return s_syntax_ok(pattern, size, true) ? 0 : ZMESH_EPATTERN;
}

/*  A cursor over the tokens of a topic or pattern. */
typedef struct {
    const char *at;
    const char *end;
    bool done;
} s_cursor_t;

/*  Returns the next token and advances, or false when none is left. */
static bool
s_next_token(s_cursor_t *cursor, const char **token, size_t *length)
{
    if (cursor->done)
        return false;
    const char *dot =
        memchr(cursor->at, '.', (size_t)(cursor->end - cursor->at));
    *token = cursor->at;
    if (dot) {
        *length = (size_t)(dot - cursor->at);
        cursor->at = dot + 1;
    } else {
        *length = (size_t)(cursor->end - cursor->at);
        cursor->done = true;
    }
    return true;
}

static bool
s_is_wildcard(const char *token, size_t length, char which)
{
    return length == 1 && token[0] == which;
}

bool
zmesh__pattern_match(const char *pattern, size_t pattern_size,
                     const char *topic, size_t topic_size)
{
    if (!pattern || !topic || pattern_size == 0 || topic_size == 0)
        return false;
    bool dollar = topic[0] == '$';
    s_cursor_t p = {pattern, pattern + pattern_size, false};
    s_cursor_t t = {topic, topic + topic_size, false};
    bool first = true;
    for (;;) {
        const char *pt = NULL, *tt = NULL;
        size_t pl = 0, tl = 0;
        bool have_p = s_next_token(&p, &pt, &pl);
        bool have_t = s_next_token(&t, &tt, &tl);
        if (!have_p || !have_t)
            return !have_p && !have_t;
        bool star = s_is_wildcard(pt, pl, '*');
        bool rest = s_is_wildcard(pt, pl, '>');
        if (first && dollar && (star || rest))
            return false;
        first = false;
        if (rest)
            return true; /* tt is the first of the one or more tokens */
        if (!star && (pl != tl || memcmp(pt, tt, pl) != 0))
            return false;
    }
}

bool
zmesh__patterns_intersect(const char *a, size_t a_size, const char *b,
                          size_t b_size)
{
    if (!a || !b || a_size == 0 || b_size == 0)
        return false;
    s_cursor_t ca = {a, a + a_size, false};
    s_cursor_t cb = {b, b + b_size, false};
    bool first = true;
    for (;;) {
        const char *ta = NULL, *tb = NULL;
        size_t la = 0, lb = 0;
        bool have_a = s_next_token(&ca, &ta, &la);
        bool have_b = s_next_token(&cb, &tb, &lb);
        if (!have_a || !have_b)
            return !have_a && !have_b;
        bool wild_a = s_is_wildcard(ta, la, '*') || s_is_wildcard(ta, la, '>');
        bool wild_b = s_is_wildcard(tb, lb, '*') || s_is_wildcard(tb, lb, '>');
        /* A wildcard first token stands only for non-'$' tokens, so it
           cannot meet a literal '$' token there. */
        if (first && ((wild_a && !wild_b && tb[0] == '$') ||
                      (wild_b && !wild_a && ta[0] == '$')))
            return false;
        first = false;
        /* Both sides have a token here, so a '>' on either side can take
           it and everything the other side still has. */
        if (s_is_wildcard(ta, la, '>') || s_is_wildcard(tb, lb, '>'))
            return true;
        if (!wild_a && !wild_b && (la != lb || memcmp(ta, tb, la) != 0))
            return false;
    }
}

size_t
zmesh__pattern_filter(const char *pattern, size_t size, char *out, size_t cap)
{
    assert(out && cap >= ZMESH_TOPIC_MAX + 2);
    (void)cap; // only the assert reads it
    if (!pattern || size > ZMESH_TOPIC_MAX)
        return 0;
    s_cursor_t c = {pattern, pattern + size, false};
    const char *token;
    size_t length;
    while (s_next_token(&c, &token, &length)) {
        if (s_is_wildcard(token, length, '*') ||
            s_is_wildcard(token, length, '>')) {
            size_t prefix = (size_t)(token - pattern);
            memcpy(out, pattern, prefix);
            return prefix;
        }
    }
    memcpy(out, pattern, size);
    out[size] = '\0';
    return size + 1;
}

int
zmesh_topic_check(const char *topic)
{
    if (!topic)
        return ZMESH_EINVAL;
    return zmesh__topic_check(topic, strnlen(topic, ZMESH_TOPIC_MAX + 1));
}

int
zmesh_pattern_check(const char *pattern)
{
    if (!pattern)
        return ZMESH_EINVAL;
    return zmesh__pattern_check(pattern, strnlen(pattern, ZMESH_TOPIC_MAX + 1));
}

int
zmesh_pattern_match(const char *pattern, const char *topic)
{
    if (!pattern || !topic)
        return 0;
    size_t pattern_size = strnlen(pattern, ZMESH_TOPIC_MAX + 1);
    size_t topic_size = strnlen(topic, ZMESH_TOPIC_MAX + 1);
    if (zmesh__pattern_check(pattern, pattern_size) != 0)
        return 0;
    int rc = zmesh__topic_check(topic, topic_size);
    if (rc != 0 && rc != ZMESH_ERESERVED)
        return 0;
    return zmesh__pattern_match(pattern, pattern_size, topic, topic_size);
}

/* ------------------------------------------------------------------------ */
/*  The index                                                               */

/*  One distinct pattern: its text and how many times it was added. */
typedef struct {
    size_t refs;
    char text[]; /* NUL-terminated */
} s_entry_t;

/*  A trie node stands for one token after its parent's. Literal children
    sit in an open-addressing table (linear probing, at most half full)
    keyed by the token's hash; '*' has its own slot, and a pattern ending
    in '>' here is just a mark on this node, since '>' is always last. */
typedef struct s_node {
    struct s_node *parent;
    struct s_node **slots; /* literal children; NULL = empty slot */
    size_t slot_count;     /* a power of two, or 0 */
    size_t child_count;    /* literal children */
    struct s_node *star;   /* the '*' child */
    s_entry_t *end;        /* the pattern that ends at this node */
    s_entry_t *rest;       /* the pattern this node's path + ".>" */
    uint32_t hash;         /* of token */
    size_t token_length;
    char token[]; /* not terminated */
} s_node_t;

struct zmesh__topic_index {
    s_node_t *root;
    s_entry_t **entries; /* in insertion order, for zmesh__topic_index_at */
    size_t entry_count;
    size_t entry_cap;
};

/*  FNV-1a, 32 bits: tokens are short and the table is kept half empty. */
static uint32_t
s_token_hash(const char *token, size_t length)
{
    uint32_t hash = 0x811c9dc5u;
    for (size_t i = 0; i < length; i++) {
        hash ^= (unsigned char)token[i];
        hash *= 0x01000193u;
    }
    return hash;
}

static s_node_t *
s_node_new(s_node_t *parent, const char *token, size_t length, uint32_t hash)
{
    s_node_t *node = calloc(1, sizeof *node + length);
    if (!node)
        return NULL;
    node->parent = parent;
    node->hash = hash;
    node->token_length = length;
    if (length)
        memcpy(node->token, token, length);
    return node;
}

static void
s_node_free(s_node_t *node)
{
    if (!node)
        return;
    for (size_t i = 0; i < node->slot_count; i++)
        s_node_free(node->slots[i]);
    s_node_free(node->star);
    free(node->slots);
    free(node);
}

static s_node_t *
s_child_find(const s_node_t *node, const char *token, size_t length,
             uint32_t hash)
{
    if (node->child_count == 0)
        return NULL;
    size_t mask = node->slot_count - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        s_node_t *child = node->slots[i];
        if (!child)
            return NULL;
        if (child->hash == hash && child->token_length == length &&
            memcmp(child->token, token, length) == 0)
            return child;
    }
}

static void
s_slots_put(s_node_t **slots, size_t slot_count, s_node_t *child)
{
    size_t mask = slot_count - 1;
    size_t i = child->hash & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = child;
}

static int
s_child_insert(s_node_t *node, s_node_t *child)
{
    if (2 * (node->child_count + 1) > node->slot_count) {
        size_t grown = node->slot_count ? 2 * node->slot_count : 4;
        s_node_t **slots = calloc(grown, sizeof *slots);
        if (!slots)
            return ZMESH_ENOMEM;
        for (size_t i = 0; i < node->slot_count; i++)
            if (node->slots[i])
                s_slots_put(slots, grown, node->slots[i]);
        free(node->slots);
        node->slots = slots;
        node->slot_count = grown;
    }
    s_slots_put(node->slots, node->slot_count, child);
    node->child_count++;
    return 0;
}

/*  Removes a literal child by backward-shift deletion, which keeps every
    probe chain unbroken without tombstones. */
static void
s_child_remove(s_node_t *node, const s_node_t *child)
{
    size_t mask = node->slot_count - 1;
    size_t hole = child->hash & mask;
    while (node->slots[hole] != child)
        hole = (hole + 1) & mask;
    node->slots[hole] = NULL;
    for (size_t i = (hole + 1) & mask; node->slots[i]; i = (i + 1) & mask) {
        size_t home = node->slots[i]->hash & mask;
        /* Move the entry back unless its home lies cyclically in
           (hole, i], where it is still reachable. */
        bool reachable =
            hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (!reachable) {
            node->slots[hole] = node->slots[i];
            node->slots[i] = NULL;
            hole = i;
        }
    }
    node->child_count--;
}

static bool
s_node_unused(const s_node_t *node)
{
    return node->child_count == 0 && !node->star && !node->end && !node->rest;
}

/*  Frees `node` and each ancestor that no longer leads to a pattern. */
static void
s_prune(s_node_t *node)
{
    while (node->parent && s_node_unused(node)) {
        s_node_t *parent = node->parent;
        if (parent->star == node)
            parent->star = NULL;
        else
            s_child_remove(parent, node);
        s_node_free(node);
        node = parent;
    }
}

int
zmesh__topic_index_new(zmesh__topic_index_t **index)
{
    assert(index);
    zmesh__topic_index_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZMESH_ENOMEM;
    self->root = s_node_new(NULL, NULL, 0, 0);
    if (!self->root) {
        free(self);
        return ZMESH_ENOMEM;
    }
    *index = self;
    return 0;
}

void
zmesh__topic_index_destroy(zmesh__topic_index_t **index)
{
    if (!index || !*index)
        return;
    zmesh__topic_index_t *self = *index;
    s_node_free(self->root);
    for (size_t i = 0; i < self->entry_count; i++)
        free(self->entries[i]);
    free(self->entries);
    free(self);
    *index = NULL;
}

/*  Walks the trie along `pattern`, creating nodes when `create`. Returns
    the node of the last token that is not '>' (the root for ">"), sets
    *rest when the pattern ends with '>', and returns NULL when a node is
    missing (or on ENOMEM when creating; *failed is then set). */
static s_node_t *
s_walk(zmesh__topic_index_t *self, const char *pattern, size_t size,
       bool create, bool *rest, bool *failed)
{
    s_node_t *node = self->root;
    s_cursor_t c = {pattern, pattern + size, false};
    const char *token;
    size_t length;
    *rest = false;
    *failed = false;
    while (s_next_token(&c, &token, &length)) {
        if (s_is_wildcard(token, length, '>')) {
            *rest = true;
            break;
        }
        s_node_t *child;
        uint32_t hash = 0;
        bool star = s_is_wildcard(token, length, '*');
        if (star)
            child = node->star;
        else {
            hash = s_token_hash(token, length);
            child = s_child_find(node, token, length, hash);
        }
        if (!child) {
            if (!create)
                return NULL;
            child = s_node_new(node, token, length, hash);
            if (!child || (!star && s_child_insert(node, child) != 0)) {
                free(child);
                s_prune(node);
                *failed = true;
                return NULL;
            }
            if (star)
                node->star = child;
        }
        node = child;
    }
    return node;
}

int
zmesh__topic_index_add(zmesh__topic_index_t *self, const char *pattern)
{
    assert(self && pattern);
    size_t size = strnlen(pattern, ZMESH_TOPIC_MAX + 1);
    if (zmesh__pattern_check(pattern, size) != 0)
        return ZMESH_EPATTERN;
    bool rest, failed;
    s_node_t *node = s_walk(self, pattern, size, true, &rest, &failed);
    if (!node)
        return ZMESH_ENOMEM;
    s_entry_t **slot = rest ? &node->rest : &node->end;
    if (*slot) {
        (*slot)->refs++;
        return 0;
    }
    if (self->entry_count == self->entry_cap) {
        size_t grown = self->entry_cap ? 2 * self->entry_cap : 8;
        s_entry_t **entries =
            realloc(self->entries, grown * sizeof *self->entries);
        if (!entries) {
            s_prune(node);
            return ZMESH_ENOMEM;
        }
        self->entries = entries;
        self->entry_cap = grown;
    }
    s_entry_t *entry = malloc(sizeof *entry + size + 1);
    if (!entry) {
        s_prune(node);
        return ZMESH_ENOMEM;
    }
    entry->refs = 1;
    memcpy(entry->text, pattern, size + 1);
    *slot = entry;
    self->entries[self->entry_count++] = entry;
    return 1;
}

int
zmesh__topic_index_remove(zmesh__topic_index_t *self, const char *pattern)
{
    assert(self && pattern);
    size_t size = strnlen(pattern, ZMESH_TOPIC_MAX + 1);
    if (zmesh__pattern_check(pattern, size) != 0)
        return ZMESH_ENOTFOUND;
    bool rest, failed;
    s_node_t *node = s_walk(self, pattern, size, false, &rest, &failed);
    if (!node)
        return ZMESH_ENOTFOUND;
    s_entry_t **slot = rest ? &node->rest : &node->end;
    s_entry_t *entry = *slot;
    if (!entry)
        return ZMESH_ENOTFOUND;
    if (--entry->refs > 0)
        return 0;
    *slot = NULL;
    /* Keep insertion order for the others: index_at stays predictable. */
    for (size_t i = 0; i < self->entry_count; i++) {
        if (self->entries[i] == entry) {
            memmove(self->entries + i, self->entries + i + 1,
                    (self->entry_count - i - 1) * sizeof *self->entries);
            self->entry_count--;
            break;
        }
    }
    free(entry);
    s_prune(node);
    return 1;
}

/*  A topic cut into tokens once, with their hashes, so the walk hashes
    each token once however many branches look at it. */
typedef struct {
    const char *topic;
    size_t count;
    struct {
        uint8_t offset, length;
        uint32_t hash;
    } tokens[S_TOKENS_MAX];
    bool dollar;
} s_split_t;

/*  Depth-first over the trie. Every trie node is reached at most once
    per topic (one path of the topic's tokens leads to it), so the walk
    is bounded by the trie's size and usually touches a handful of
    nodes. The depth is at most S_TOKENS_MAX. */
static bool
s_match(const s_node_t *node, const s_split_t *split, size_t depth)
{
    /* depth < count here: the topic still has a token for this node's
       children, so a '>' on this node matches. */
    bool root = depth == 0;
    bool wild_ok = !(root && split->dollar);
    if (node->rest && wild_ok)
        return true;
    bool last = depth + 1 == split->count;
    const char *token = split->topic + split->tokens[depth].offset;
    size_t length = split->tokens[depth].length;
    const s_node_t *child =
        s_child_find(node, token, length, split->tokens[depth].hash);
    if (child && (last ? child->end != NULL : s_match(child, split, depth + 1)))
        return true;
    child = wild_ok ? node->star : NULL;
    return child &&
           (last ? child->end != NULL : s_match(child, split, depth + 1));
}

bool
zmesh__topic_index_match(const zmesh__topic_index_t *self, const char *topic,
                         size_t size)
{
    assert(self);
    if (!topic || size == 0 || size > ZMESH_TOPIC_MAX)
        return false;
    if (self->entry_count == 0)
        return false;
    s_split_t split;
    split.topic = topic;
    split.count = 0;
    split.dollar = topic[0] == '$';
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && topic[i] != '.')
            continue;
        /* An empty token would make a wildcard match nothing: such a
           topic is invalid and matches no pattern. */
        if (i == start || split.count == S_TOKENS_MAX)
            return false;
        split.tokens[split.count].offset = (uint8_t)start;
        split.tokens[split.count].length = (uint8_t)(i - start);
        split.tokens[split.count].hash = s_token_hash(topic + start, i - start);
        split.count++;
        start = i + 1;
    }
    return s_match(self->root, &split, 0);
}

size_t
zmesh__topic_index_size(const zmesh__topic_index_t *self)
{
    assert(self);
    return self->entry_count;
}

const char *
zmesh__topic_index_at(const zmesh__topic_index_t *self, size_t i)
{
    assert(self && i < self->entry_count);
    return self->entries[i]->text;
}
