/* Strict recursive-descent JSON parser. Recursion is bounded by max_depth, memory by
 * max_values and the input length; container children are collected on one scratch stack
 * and copied into the arena when the container closes, so the tree needs no reallocations. */
#include "io/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

#define JSON_DEFAULT_DEPTH 64
#define JSON_HARD_MAX_DEPTH 512 /* keeps the C stack bounded whatever the caller asks */
#define JSON_DEFAULT_VALUES ((size_t)1 << 20)
#define JSON_BLOCK_BYTES ((size_t)64 * 1024)
#define JSON_DUP_LINEAR_MAX 16 /* objects this small are checked pairwise, without sorting */

/* ---- arena --------------------------------------------------------------------------------- */

struct gn_json_block {
    struct gn_json_block *next;
    size_t used, cap;
    max_align_t data[]; /* aligned for any member type */
};

static void *arena_alloc(struct gn_json_block **head, size_t size) {
    const size_t align = _Alignof(max_align_t);
    size_t need;
    if (!gn_add_size(size ? size : 1, align - 1, &need)) return NULL;
    need -= need % align;
    struct gn_json_block *b = *head;
    if (b && b->cap - b->used >= need) {
        void *p = (char *)b->data + b->used;
        b->used += need;
        return p;
    }
    size_t cap = need > JSON_BLOCK_BYTES ? need : JSON_BLOCK_BYTES, total;
    if (!gn_add_size(sizeof *b, cap, &total)) return NULL;
    struct gn_json_block *nb = malloc(total);
    if (!nb) return NULL;
    nb->cap = cap;
    nb->used = need;
    if (b && need >= JSON_BLOCK_BYTES) {
        /* A dedicated big block goes behind the head, which keeps its free space. */
        nb->next = b->next;
        b->next = nb;
    } else {
        nb->next = b;
        *head = nb;
    }
    return nb->data;
}

void gn_json_doc_free(gn_json_doc *doc) {
    if (!doc) return;
    struct gn_json_block *b = doc->blocks;
    while (b) {
        struct gn_json_block *next = b->next;
        free(b);
        b = next;
    }
    memset(doc, 0, sizeof *doc);
}

/* ---- UTF-8 and string helpers ------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (at most avail bytes), or 0 if ill-formed. */
static size_t utf8_seq_len(const unsigned char *s, size_t avail) {
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0; /* overlong */
        if (c == 0xED) hi = 0x9F; /* UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90; /* overlong */
        if (c == 0xF4) hi = 0x8F; /* past U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < n; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    return n;
}

int gn_json_utf8_valid(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq_len(u + i, len - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

static size_t utf8_encode(uint32_t cp, char *dst) {
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xC0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xE0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        dst[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    dst[0] = (char)(0xF0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    dst[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t gn_json_escape(const char *s, size_t len, char *dst) {
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char buf[6];
        size_t k = 2;
        buf[0] = '\\';
        switch (c) {
        case '"': buf[1] = '"'; break;
        case '\\': buf[1] = '\\'; break;
        case '\n': buf[1] = 'n'; break;
        case '\r': buf[1] = 'r'; break;
        case '\t': buf[1] = 't'; break;
        case '\b': buf[1] = 'b'; break;
        case '\f': buf[1] = 'f'; break;
        default:
            if (c < 0x20) {
                memcpy(buf, "\\u00", 4);
                buf[4] = hex[c >> 4];
                buf[5] = hex[c & 15];
                k = 6;
            } else {
                buf[0] = (char)c;
                k = 1;
            }
        }
        if (dst) memcpy(dst + n, buf, k);
        n += k;
    }
    return n;
}

char *gn_json_quote(const char *s, size_t len, char *dst, size_t cap) {
    const unsigned char *u = (const unsigned char *)s;
    /* Output has exactly one byte per input byte, so the cut is known up front. */
    size_t room = len <= cap - 1 ? len : cap - 4, n = 0;
    for (size_t i = 0; i < len;) {
        size_t k = u[i] < 0x80 ? 1 : utf8_seq_len(u + i, len - i);
        int bad = k == 0 || (k == 1 && (u[i] < 0x20 || u[i] == 0x7F));
        size_t w = bad ? 1 : k;
        if (n + w > room) break;
        if (bad)
            dst[n] = '?';
        else
            memcpy(dst + n, s + i, k);
        n += w;
        i += w;
    }
    if (len > cap - 1) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
    return dst;
}

/* ---- parser state and errors -------------------------------------------------------------- */

typedef struct parser {
    const unsigned char *s;
    size_t len, pos;
    gn_json_options opt;
    int depth;
    size_t values;
    struct gn_json_block **arena;
    gn_json_member *stack; /* children of the open containers, innermost last */
    size_t stack_len, stack_cap;
    gn_error *err;
} parser;

static gn_status fail_at(parser *p, size_t pos, const char *fmt, ...) GN_PRINTF(3, 4);
static gn_status fail_at(parser *p, size_t pos, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return gn_fail(p->err, GN_ERR_FORMAT, "%s at byte %zu", msg, pos);
}

static gn_status fail_nomem(parser *p) {
    return gn_fail(p->err, GN_ERR_NOMEM, "out of memory parsing %zu bytes of JSON", p->len);
}

/* "end of input", "'x'" or "byte 0xNN": what sits at the current position. */
static const char *describe(const parser *p, char *buf, size_t cap) {
    if (p->pos >= p->len) return "end of input";
    unsigned char c = p->s[p->pos];
    if (c >= 0x20 && c < 0x7F)
        snprintf(buf, cap, "'%c'", c);
    else
        snprintf(buf, cap, "byte 0x%02X", c);
    return buf;
}

static gn_status fail_expected(parser *p, const char *expected) {
    char buf[16];
    return fail_at(p, p->pos, "expected %s but found %s", expected, describe(p, buf, sizeof buf));
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int peek(const parser *p) { return p->pos < p->len ? p->s[p->pos] : -1; }

static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* ---- strings -------------------------------------------------------------------------------- */

static int hex4(const unsigned char *s, uint32_t *out) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = s[k];
        uint32_t d;
        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return 0;
        v = v * 16 + d;
    }
    *out = v;
    return 1;
}

/* Decodes \uXXXX (and a following low surrogate) at s[*i] (the backslash) below end. */
static gn_status decode_unicode(parser *p, size_t *i, size_t end, char *dst, size_t *n) {
    size_t at = *i;
    uint32_t cp, lo;
    if (end - at < 6 || !hex4(p->s + at + 2, &cp))
        return fail_at(p, at, "invalid \\u escape (needs 4 hex digits)");
    size_t used = 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail_at(p, at, "unpaired low surrogate \\u%04X in string", (unsigned)cp);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - at < 12 || p->s[at + 6] != '\\' || p->s[at + 7] != 'u' ||
            !hex4(p->s + at + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF)
            return fail_at(p, at, "unpaired high surrogate \\u%04X in string", (unsigned)cp);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        used = 12;
    }
    *n += utf8_encode(cp, dst + *n);
    *i = at + used;
    return GN_OK;
}

static gn_status decode_escape(parser *p, size_t *i, size_t end, char *dst, size_t *n) {
    size_t at = *i;
    unsigned char e = at + 1 < end ? p->s[at + 1] : 0;
    char c;
    switch (e) {
    case '"': c = '"'; break;
    case '\\': c = '\\'; break;
    case '/': c = '/'; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u': return decode_unicode(p, i, end, dst, n);
    default:
        if (e >= 0x20 && e < 0x7F) return fail_at(p, at, "invalid escape '\\%c' in string", e);
        return fail_at(p, at, "invalid escape (byte 0x%02X after '\\') in string", e);
    }
    dst[(*n)++] = c;
    *i = at + 2;
    return GN_OK;
}

/* Parses the string starting at the opening quote into the arena. */
static gn_status parse_string(parser *p, const char **out, size_t *out_len) {
    size_t start = p->pos + 1, end = start;
    /* Find the closing quote first: the decoded text is never longer than the raw text. */
    while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
    if (end >= p->len) return fail_at(p, p->pos, "unterminated string");
    char *dst = arena_alloc(p->arena, end - start + 1);
    if (!dst) return fail_nomem(p);
    size_t n = 0;
    for (size_t i = start; i < end;) {
        unsigned char c = p->s[i];
        if (c == '\\') {
            gn_status st = decode_escape(p, &i, end, dst, &n);
            if (st) return st;
        } else if (c < 0x20) {
            return fail_at(p, i, "unescaped control character 0x%02X in string", c);
        } else {
            size_t k = utf8_seq_len(p->s + i, end - i);
            if (!k) return fail_at(p, i, "invalid UTF-8 byte 0x%02X in string", c);
            memcpy(dst + n, p->s + i, k);
            n += k;
            i += k;
        }
    }
    dst[n] = '\0';
    *out = dst;
    *out_len = n;
    p->pos = end + 1;
    return GN_OK;
}

/* ---- numbers -------------------------------------------------------------------------------- */

/* Significant decimal digits kept in a u64 mantissa with a base-10 exponent. */
typedef struct decimal {
    uint64_t mant;
    int digits;
    long long exp10;
} decimal;

static void decimal_push(decimal *d, int digit, int fractional) {
    if (d->digits < 19) {
        d->mant = d->mant * 10 + (uint64_t)digit;
        if (d->mant) d->digits++; /* leading zeros are not significant */
        if (fractional) d->exp10--;
    } else if (!fractional) {
        d->exp10++;
    }
}

static double pow10_int(long long k) {
    double r = 1.0, b = 10.0;
    while (k > 0) {
        if (k & 1) r *= b;
        b *= b;
        k >>= 1;
    }
    return r;
}

static double decimal_value(const decimal *d) {
    if (d->mant == 0) return 0.0;
    long long e = d->exp10;
    double v = (double)d->mant;
    if (e > 400) e = 400; /* already infinite */
    if (e < -800) e = -800; /* already zero */
    /* Scale in steps so that 10^-e itself never overflows before a tiny result. */
    while (e < -300) {
        v /= 1e300;
        e += 300;
    }
    return e >= 0 ? v * pow10_int(e) : v / pow10_int(-e);
}

static gn_status parse_number(parser *p, gn_json *out) {
    size_t start = p->pos, i = start;
    gn_json_number num = {0};
    decimal dec = {0};
    if (p->s[i] == '-') {
        num.negative = 1;
        i++;
    }
    if (i >= p->len || !is_digit(p->s[i]))
        return fail_at(p, start, "invalid number: expected a digit after '-'");
    if (p->s[i] == '0' && i + 1 < p->len && is_digit(p->s[i + 1]))
        return fail_at(p, start, "invalid number: leading zeros are not allowed");
    num.is_integer = 1;
    for (; i < p->len && is_digit(p->s[i]); i++) {
        unsigned d = (unsigned)(p->s[i] - '0');
        if (num.magnitude > (UINT64_MAX - d) / 10) num.overflow = 1;
        if (!num.overflow) num.magnitude = num.magnitude * 10 + d;
        decimal_push(&dec, (int)d, 0);
    }
    if (i < p->len && p->s[i] == '.') {
        num.is_integer = 0;
        if (++i >= p->len || !is_digit(p->s[i]))
            return fail_at(p, i, "invalid number: expected a digit after '.'");
        for (; i < p->len && is_digit(p->s[i]); i++) decimal_push(&dec, p->s[i] - '0', 1);
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        num.is_integer = 0;
        int sign = 1;
        if (++i < p->len && (p->s[i] == '+' || p->s[i] == '-')) sign = p->s[i++] == '-' ? -1 : 1;
        if (i >= p->len || !is_digit(p->s[i]))
            return fail_at(p, i, "invalid number: expected a digit in the exponent");
        long long e = 0;
        for (; i < p->len && is_digit(p->s[i]); i++)
            if (e < 100000) e = e * 10 + (p->s[i] - '0'); /* saturate: beyond any double */
        dec.exp10 += sign * e;
    }
    if (!num.is_integer) {
        num.magnitude = 0;
        num.overflow = 0;
    }
    num.value = decimal_value(&dec);
    if (num.value > 1.7976931348623157e308) return fail_at(p, start, "number out of range");
    if (num.negative) num.value = -num.value;
    out->type = GN_JSON_NUMBER;
    out->u.number = num;
    p->pos = i;
    return GN_OK;
}

/* ---- containers ----------------------------------------------------------------------------- */

static gn_status parse_value(parser *p, gn_json *out);

static gn_status push(parser *p, const gn_json_member *m) {
    if (p->stack_len == p->stack_cap) {
        size_t cap = p->stack_cap ? p->stack_cap * 2 : 16, bytes;
        if (!gn_mul_size(cap, sizeof *p->stack, &bytes)) return fail_nomem(p);
        gn_json_member *s = realloc(p->stack, bytes);
        if (!s) return fail_nomem(p);
        p->stack = s;
        p->stack_cap = cap;
    }
    p->stack[p->stack_len++] = *m;
    return GN_OK;
}

static gn_status enter(parser *p) {
    if (p->depth >= p->opt.max_depth)
        return fail_at(p, p->pos, "nesting deeper than %d levels", p->opt.max_depth);
    p->depth++;
    p->pos++; /* the opening bracket */
    return GN_OK;
}

static int key_cmp(const void *a, const void *b) {
    const gn_json_member *x = *(const gn_json_member *const *)a;
    const gn_json_member *y = *(const gn_json_member *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c) return c;
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static gn_status fail_duplicate(parser *p, const gn_json_member *a, const gn_json_member *b) {
    const gn_json_member *later = a->key_offset > b->key_offset ? a : b;
    char name[128];
    gn_json_quote(later->key, later->key_len, name, sizeof name);
    return fail_at(p, later->key_offset, "duplicate key '%s'", name);
}

static gn_status check_duplicates(parser *p, const gn_json_member *m, size_t count) {
    if (count <= JSON_DUP_LINEAR_MAX) {
        for (size_t i = 0; i < count; i++)
            for (size_t j = i + 1; j < count; j++) {
                const gn_json_member *a = &m[i], *b = &m[j];
                if (key_cmp(&a, &b) == 0) return fail_duplicate(p, a, b);
            }
        return GN_OK;
    }
    const gn_json_member **idx = gn_calloc(count, sizeof *idx);
    if (!idx) return fail_nomem(p);
    for (size_t i = 0; i < count; i++) idx[i] = &m[i];
    qsort(idx, count, sizeof *idx, key_cmp);
    gn_status st = GN_OK;
    for (size_t i = 1; i < count && !st; i++)
        if (key_cmp(&idx[i - 1], &idx[i]) == 0) st = fail_duplicate(p, idx[i - 1], idx[i]);
    free(idx);
    return st;
}

/* Moves the children pushed since `base` into the arena. */
static gn_status close_container(parser *p, size_t base, gn_json *out) {
    size_t count = p->stack_len - base, bytes;
    const gn_json_member *kids = count ? p->stack + base : NULL; /* stack may still be NULL */
    if (out->type == GN_JSON_OBJECT) {
        if (p->opt.reject_duplicate_keys) {
            gn_status st = check_duplicates(p, kids, count);
            if (st) return st;
        }
        gn_json_member *m = NULL;
        if (count) {
            if (!gn_mul_size(count, sizeof *m, &bytes) || !(m = arena_alloc(p->arena, bytes)))
                return fail_nomem(p);
            memcpy(m, kids, bytes);
        }
        out->u.object.members = m;
        out->u.object.count = count;
    } else {
        gn_json *items = NULL;
        if (count) {
            if (!gn_mul_size(count, sizeof *items, &bytes) ||
                !(items = arena_alloc(p->arena, bytes)))
                return fail_nomem(p);
            for (size_t i = 0; i < count; i++) items[i] = kids[i].value;
        }
        out->u.array.items = items;
        out->u.array.count = count;
    }
    return GN_OK;
}

static gn_status parse_member(parser *p, gn_json_member *m) {
    skip_ws(p);
    if (peek(p) != '"') return fail_expected(p, "a string key");
    m->key_offset = p->pos;
    gn_status st = parse_string(p, &m->key, &m->key_len);
    if (st) return st;
    skip_ws(p);
    if (peek(p) != ':') return fail_expected(p, "':' after the key");
    p->pos++;
    return parse_value(p, &m->value);
}

/* Arrays and objects share the loop: items (or members) separated by commas. */
static gn_status parse_container(parser *p, gn_json *out) {
    int object = p->s[p->pos] == '{';
    int closer = object ? '}' : ']';
    gn_status st = enter(p);
    if (st) return st;
    out->type = object ? GN_JSON_OBJECT : GN_JSON_ARRAY;
    size_t base = p->stack_len;
    skip_ws(p);
    if (peek(p) == closer) {
        p->pos++;
    } else {
        for (;;) {
            gn_json_member m = {0};
            st = object ? parse_member(p, &m) : parse_value(p, &m.value);
            if (!st) st = push(p, &m);
            if (st) break;
            skip_ws(p);
            if (peek(p) == ',') {
                p->pos++;
                continue;
            }
            if (peek(p) == closer) {
                p->pos++;
                break;
            }
            st = fail_expected(p, object ? "',' or '}'" : "',' or ']'");
            break;
        }
    }
    if (!st) st = close_container(p, base, out);
    p->stack_len = base;
    p->depth--;
    return st;
}

static gn_status parse_literal(parser *p, const char *word, gn_json *out) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail_at(p, p->pos, "invalid literal (expected '%s')", word);
    p->pos += n;
    out->type = word[0] == 'n' ? GN_JSON_NULL : GN_JSON_BOOL;
    out->u.boolean = word[0] == 't';
    return GN_OK;
}

static gn_status parse_value(parser *p, gn_json *out) {
    skip_ws(p);
    memset(out, 0, sizeof *out);
    out->offset = p->pos;
    if (++p->values > p->opt.max_values)
        return fail_at(p, p->pos, "more than %zu values", p->opt.max_values);
    switch (peek(p)) {
    case '{':
    case '[': return parse_container(p, out);
    case '"':
        out->type = GN_JSON_STRING;
        return parse_string(p, &out->u.string.ptr, &out->u.string.len);
    case 't': return parse_literal(p, "true", out);
    case 'f': return parse_literal(p, "false", out);
    case 'n': return parse_literal(p, "null", out);
    default:
        if (peek(p) == '-' || is_digit(peek(p))) return parse_number(p, out);
        return fail_expected(p, "a value");
    }
}

/* ---- public entry points -------------------------------------------------------------------- */

gn_json_options gn_json_options_default(void) {
    gn_json_options o = {JSON_DEFAULT_DEPTH, JSON_DEFAULT_VALUES, 1};
    return o;
}

gn_status gn_json_parse(const char *text, size_t len, const gn_json_options *options,
                        gn_json_doc *doc, gn_error *err) {
    if (!doc) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_json_parse: doc is NULL");
    memset(doc, 0, sizeof *doc);
    if (!text && len) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_json_parse: text is NULL");
    parser p = {0};
    p.s = (const unsigned char *)text;
    p.len = len;
    p.opt = options ? *options : gn_json_options_default();
    if (p.opt.max_depth < 1) p.opt.max_depth = 1;
    if (p.opt.max_depth > JSON_HARD_MAX_DEPTH) p.opt.max_depth = JSON_HARD_MAX_DEPTH;
    p.arena = &doc->blocks;
    p.err = err;
    gn_status st = parse_value(&p, &doc->root);
    if (!st) {
        skip_ws(&p);
        if (p.pos < p.len) st = fail_expected(&p, "end of input after the JSON value");
    }
    free(p.stack);
    if (st) gn_json_doc_free(doc);
    return st;
}

const char *gn_json_type_name(gn_json_type type) {
    switch (type) {
    case GN_JSON_NULL: return "null";
    case GN_JSON_BOOL: return "boolean";
    case GN_JSON_NUMBER: return "number";
    case GN_JSON_STRING: return "string";
    case GN_JSON_ARRAY: return "array";
    case GN_JSON_OBJECT: return "object";
    }
    return "unknown";
}

const gn_json *gn_json_object_get(const gn_json *obj, const char *key) {
    if (!obj || obj->type != GN_JSON_OBJECT || !key) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < obj->u.object.count; i++) {
        const gn_json_member *m = &obj->u.object.members[i];
        if (m->key_len == n && memcmp(m->key, key, n) == 0) return &m->value;
    }
    return NULL;
}

int gn_json_get_u64(const gn_json *v, uint64_t *out) {
    if (!v || v->type != GN_JSON_NUMBER) return 0;
    const gn_json_number *n = &v->u.number;
    if (!n->is_integer || n->overflow || (n->negative && n->magnitude != 0)) return 0;
    *out = n->magnitude;
    return 1;
}

int gn_json_get_i64(const gn_json *v, int64_t *out) {
    if (!v || v->type != GN_JSON_NUMBER) return 0;
    const gn_json_number *n = &v->u.number;
    const uint64_t limit = (uint64_t)INT64_MAX + (n->negative ? 1u : 0u);
    if (!n->is_integer || n->overflow || n->magnitude > limit) return 0;
    if (!n->negative)
        *out = (int64_t)n->magnitude;
    else if (n->magnitude == (uint64_t)INT64_MAX + 1u)
        *out = INT64_MIN;
    else
        *out = -(int64_t)n->magnitude;
    return 1;
}
