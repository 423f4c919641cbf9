/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The codec engine: walks the descriptor tables of proto/kmsg_gen.c to decode
 * and encode Kafka request and response bodies and headers.
 *
 * WIRE FORMAT
 *
 * Big-endian throughout. A struct is its fields in schema order, each field
 * present only in the versions its row names. Non-flexible and flexible
 * versions differ in how lengths are written and in tagged fields:
 *
 *   type               non-flexible                flexible ("compact")
 *   bool               1 byte, 0 false             same
 *   int8..int64        1, 2, 4, 8 bytes            same
 *   uint16, uint32     2, 4 bytes                  same
 *   float64            8 bytes, IEEE 754           same
 *   uuid               16 bytes                    same
 *   string             int16 length, -1 null;      uvarint length+1, 0 null;
 *                      then the bytes              then the bytes
 *   bytes, records     int32 length, -1 null       uvarint length+1, 0 null
 *   array              int32 count, -1 null;       uvarint count+1, 0 null;
 *                      then the items              then the items
 *   end of a struct    nothing                     tagged fields (below)
 *
 * Tagged fields, at the end of every struct in a flexible version:
 *
 *   uvarint  number of tagged fields
 *   then for each: uvarint tag, uvarint size in bytes, the field's value
 *                  (in the flexible encoding)
 *
 * A field whose row sets KMSG_F_NOFLEX keeps the non-flexible encoding in
 * flexible versions (only the request header's client_id does).
 *
 * DECODING
 *
 * A cursor walks [pos, end): every read first checks that the bytes remain.
 * Lengths are checked against the remaining bytes before anything is taken
 * from the frame; an array count is checked against the remaining bytes
 * divided by the smallest encoding of one item (at least 1 byte, as Kafka
 * bounds counts by the bytes remaining) before its items are allocated from
 * the arena, so a frame claiming 2^31 items is refused, not allocated. A
 * tagged field is decoded inside a cursor narrowed to its declared size and
 * must fill it exactly. Before its fields are read, every member of a struct
 * takes its default, so members absent from the version hold defaults.
 *
 * Recursion follows the nesting of the schemas, which is fixed and shallow
 * (no schema type contains itself); the depth is asserted, not input-driven.
 *
 * ENCODING
 *
 * One walk serves both encoding and measuring: the sink either appends to a
 * buf or only counts. The size a tagged field needs in front of its value is
 * measured by a counting walk of that value first.
 */
#include "proto/kmsg.h"

#include <errno.h>
#include <stdalign.h>
#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/varint.h"

/* Kafka refuses strings longer than this in every encoding (its readers
 * check "length > 0x7fff"), compact ones included. */
#define KMSG_STRING_LEN_MAX INT16_MAX

/* Deeper than any schema nests structs (the deepest, OffsetFetchResponse v8+,
 * has four levels); reaching it means a descriptor table refers to itself.
 * It bounds the stack a decode can use, whatever the frame says. */
#ifndef KMSG_DEPTH_MAX
#define KMSG_DEPTH_MAX 16
#endif
_Static_assert(KMSG_DEPTH_MAX >= 4 && KMSG_DEPTH_MAX <= 64,
               "KMSG_DEPTH_MAX must cover the schemas and keep the stack small");

/* Alignment of arena allocations: enough for any member type. */
#define KARENA_ALIGN alignof(max_align_t)
_Static_assert((KARENA_ALIGN & (KARENA_ALIGN - 1)) == 0, "alignment is a power of two");

static const char kmsg_empty[] = "";

/* ==================================================================== arena */

void karena_init(struct karena *a, void *mem, size_t cap)
{
    SL_ASSERT(mem != NULL || cap == 0);
    a->base = mem;
    a->cap = cap;
    a->used = 0;
}

void karena_reset(struct karena *a)
{
    a->used = 0;
}

void *karena_alloc(struct karena *a, size_t n)
{
    SL_ASSERT(a->used <= a->cap);
    if (a->base == NULL) {
        return NULL;
    }
    /* Align the address, not the offset: the caller's memory may start anywhere. */
    uintptr_t at = (uintptr_t)(a->base + a->used);
    size_t pad = (size_t)(-at & (KARENA_ALIGN - 1));
    if (pad > a->cap - a->used || n > a->cap - a->used - pad) {
        return NULL;
    }
    void *p = a->base + a->used + pad;
    a->used += pad + n;
    SL_ASSERT(a->used <= a->cap);
    return p;
}

/* ======================================================= descriptor helpers */

static bool field_present(const struct kmsg_field *f, int16_t version)
{
    return version >= f->version_min && version <= f->version_max;
}

static bool field_nullable(const struct kmsg_field *f, int16_t version)
{
    return version >= f->nullable_min && version <= f->nullable_max;
}

/* Bytes one value of the type occupies in its C struct (an array item). */
static size_t type_size(uint8_t type, const struct kmsg_desc *sub)
{
    switch (type) {
    case KMSG_BOOL:
        return sizeof(bool);
    case KMSG_INT8:
        return sizeof(int8_t);
    case KMSG_INT16:
    case KMSG_UINT16:
        return sizeof(int16_t);
    case KMSG_INT32:
    case KMSG_UINT32:
        return sizeof(int32_t);
    case KMSG_INT64:
        return sizeof(int64_t);
    case KMSG_FLOAT64:
        return sizeof(double);
    case KMSG_UUID:
        return 16;
    case KMSG_STRING:
        return sizeof(struct kstr);
    case KMSG_BYTES:
    case KMSG_RECORDS:
        return sizeof(struct kbytes);
    case KMSG_STRUCT:
        SL_ASSERT(sub != NULL);
        return sub->size;
    }
    SL_ASSERT(!"unknown field type in a descriptor");
    return 0;
}

static size_t struct_min_wire_size(const struct kmsg_desc *desc, int16_t version, bool flexible,
                                   int depth);

/* The fewest bytes a value of the type can take on the wire. */
static size_t value_min_wire_size(uint8_t type, const struct kmsg_desc *sub, int16_t version,
                                  bool flex, int depth)
{
    switch (type) {
    case KMSG_BOOL:
    case KMSG_INT8:
        return 1;
    case KMSG_INT16:
    case KMSG_UINT16:
        return 2;
    case KMSG_INT32:
    case KMSG_UINT32:
        return 4;
    case KMSG_INT64:
    case KMSG_FLOAT64:
        return 8;
    case KMSG_UUID:
        return 16;
    case KMSG_STRING:
        return flex ? 1 : 2;
    case KMSG_BYTES:
    case KMSG_RECORDS:
        return flex ? 1 : 4;
    case KMSG_STRUCT:
        return struct_min_wire_size(sub, version, flex, depth + 1);
    }
    SL_ASSERT(!"unknown field type in a descriptor");
    return 0;
}

static size_t struct_min_wire_size(const struct kmsg_desc *desc, int16_t version, bool flexible,
                                   int depth)
{
    SL_ASSERT(depth < KMSG_DEPTH_MAX);
    size_t size = flexible ? 1 : 0; /* the count of tagged fields */
    for (size_t i = 0; i < desc->field_count; i++) {
        const struct kmsg_field *f = &desc->fields[i];
        if (f->tag >= 0 || !field_present(f, version)) {
            continue;
        }
        bool flex = flexible && !(f->flags & KMSG_F_NOFLEX);
        if (f->flags & KMSG_F_ARRAY) {
            size += flex ? 1 : 4;
        } else {
            size += value_min_wire_size(f->type, f->sub, version, flex, depth);
        }
    }
    return size;
}

static void struct_set_defaults(const struct kmsg_desc *desc, uint8_t *dst, int depth);

/* Stores the field's default in its member of the struct at base. */
static void field_set_default(const struct kmsg_field *f, uint8_t *base, int depth)
{
    void *dst = base + f->offset;
    int64_t v = f->default_value;
    if (f->flags & KMSG_F_ARRAY) {
        *(struct karray *)dst = (struct karray){NULL, v < 0 ? -1 : 0};
        return;
    }
    switch (f->type) {
    case KMSG_BOOL:
        *(bool *)dst = v != 0;
        break;
    case KMSG_INT8:
        *(int8_t *)dst = (int8_t)v;
        break;
    case KMSG_INT16:
        *(int16_t *)dst = (int16_t)v;
        break;
    case KMSG_UINT16:
        *(uint16_t *)dst = (uint16_t)v;
        break;
    case KMSG_INT32:
        *(int32_t *)dst = (int32_t)v;
        break;
    case KMSG_UINT32:
        *(uint32_t *)dst = (uint32_t)v;
        break;
    case KMSG_INT64:
        *(int64_t *)dst = v;
        break;
    case KMSG_FLOAT64:
        *(double *)dst = (double)v;
        break;
    case KMSG_UUID:
        memset(dst, 0, 16);
        break;
    case KMSG_STRING:
        /* An empty default points at a static "" so that a reader may pass
         * ptr to memcmp or printf without testing it. */
        *(struct kstr *)dst = v < 0 ? (struct kstr){NULL, -1} : (struct kstr){kmsg_empty, 0};
        break;
    case KMSG_BYTES:
    case KMSG_RECORDS:
        *(struct kbytes *)dst =
            v < 0 ? (struct kbytes){NULL, -1} : (struct kbytes){(const uint8_t *)kmsg_empty, 0};
        break;
    case KMSG_STRUCT:
        struct_set_defaults(f->sub, dst, depth + 1);
        break;
    default:
        SL_ASSERT(!"unknown field type in a descriptor");
    }
}

static void struct_set_defaults(const struct kmsg_desc *desc, uint8_t *dst, int depth)
{
    SL_ASSERT(depth < KMSG_DEPTH_MAX);
    memset(dst, 0, desc->size);
    for (size_t i = 0; i < desc->field_count; i++) {
        field_set_default(&desc->fields[i], dst, depth);
    }
}

static bool struct_is_default(const struct kmsg_desc *desc, const uint8_t *src, int16_t version,
                              int depth);

/* Whether the member at base holds the field's default: a tagged field is
 * written only when it does not. A struct is default when all of its fields
 * that exist in the version are (Kafka compares every field, so it may write
 * a struct whose fields on the wire all hold defaults; a reader cannot tell
 * the two apart, and comparing only those fields keeps a decoded message
 * encoding to the same bytes). */
static bool field_is_default(const struct kmsg_field *f, const uint8_t *base, int16_t version,
                             int depth)
{
    const void *src = base + f->offset;
    int64_t v = f->default_value;
    if (f->flags & KMSG_F_ARRAY) {
        return ((const struct karray *)src)->count == (v < 0 ? -1 : 0);
    }
    switch (f->type) {
    case KMSG_BOOL:
        return *(const bool *)src == (v != 0);
    case KMSG_INT8:
        return *(const int8_t *)src == v;
    case KMSG_INT16:
        return *(const int16_t *)src == v;
    case KMSG_UINT16:
        return *(const uint16_t *)src == v;
    case KMSG_INT32:
        return *(const int32_t *)src == v;
    case KMSG_UINT32:
        return *(const uint32_t *)src == v;
    case KMSG_INT64:
        return *(const int64_t *)src == v;
    case KMSG_FLOAT64:
        return *(const double *)src == (double)v;
    case KMSG_UUID: {
        static const uint8_t zero[16];
        return memcmp(src, zero, sizeof(zero)) == 0;
    }
    case KMSG_STRING:
        return ((const struct kstr *)src)->len == (v < 0 ? -1 : 0);
    case KMSG_BYTES:
    case KMSG_RECORDS:
        return ((const struct kbytes *)src)->len == (v < 0 ? -1 : 0);
    case KMSG_STRUCT:
        return struct_is_default(f->sub, src, version, depth + 1);
    }
    SL_ASSERT(!"unknown field type in a descriptor");
    return false;
}

static bool struct_is_default(const struct kmsg_desc *desc, const uint8_t *src, int16_t version,
                              int depth)
{
    SL_ASSERT(depth < KMSG_DEPTH_MAX);
    for (size_t i = 0; i < desc->field_count; i++) {
        const struct kmsg_field *f = &desc->fields[i];
        if (field_present(f, version) && !field_is_default(f, src, version, depth)) {
            return false;
        }
    }
    return true;
}

void kmsg_init(const struct kmsg_desc *desc, void *msg)
{
    SL_ASSERT(desc != NULL && msg != NULL);
    struct_set_defaults(desc, msg, 0);
}

/* ================================================================= decoding */

struct kmsg_dec {
    const uint8_t *pos;
    const uint8_t *end; /* pos <= end */
    struct karena *arena;
    int16_t version;
    bool flexible;
    int depth;
    const char *why; /* set with the error */
};

static int dec_fail(struct kmsg_dec *d, int err, const char *why)
{
    d->why = why;
    return err;
}

static size_t dec_left(const struct kmsg_dec *d)
{
    SL_ASSERT(d->pos <= d->end);
    return (size_t)(d->end - d->pos);
}

/* Takes n bytes from the cursor into *p. */
static int dec_take(struct kmsg_dec *d, size_t n, const uint8_t **p)
{
    if (n > dec_left(d)) {
        return dec_fail(d, -EBADMSG, "truncated: a field runs past the end");
    }
    *p = d->pos;
    d->pos += n;
    return 0;
}

static int dec_uvarint(struct kmsg_dec *d, uint32_t *v)
{
    int n = uvarint_get(d->pos, dec_left(d), v);
    if (n < 0) {
        return dec_fail(d, -EBADMSG, "truncated or over-long unsigned varint");
    }
    d->pos += n;
    return 0;
}

/*
 * Reads the length (or count) in front of a string, bytes or array: an int16
 * or int32 where -1 is null, or in compact form a uvarint of length + 1 where
 * 0 is null. *len is -1 for null. A null where the version does not allow one
 * is malformed.
 */
static int dec_length(struct kmsg_dec *d, bool flex, size_t width, bool nullable, int32_t *len)
{
    if (flex) {
        uint32_t v;
        int rc = dec_uvarint(d, &v);
        if (rc < 0) {
            return rc;
        }
        if (v != 0 && v - 1 > (uint32_t)INT32_MAX) {
            return dec_fail(d, -EBADMSG, "compact length does not fit in int32");
        }
        *len = (int32_t)(v - 1); /* 0 wraps to -1, null */
    } else {
        const uint8_t *p;
        int rc = dec_take(d, width, &p);
        if (rc < 0) {
            return rc;
        }
        *len = width == 2 ? (int16_t)be16_get(p) : (int32_t)be32_get(p);
    }
    if (*len < -1) {
        return dec_fail(d, -EBADMSG, "negative length");
    }
    if (*len == -1 && !nullable) {
        return dec_fail(d, -EBADMSG, "null in a field that is not nullable in this version");
    }
    return 0;
}

/* A string or bytes: a length, then that many bytes, pointed to in place. */
static int dec_blob(struct kmsg_dec *d, bool flex, size_t width, bool nullable, int32_t len_max,
                    const uint8_t **ptr, int32_t *len)
{
    int rc = dec_length(d, flex, width, nullable, len);
    if (rc < 0) {
        return rc;
    }
    if (*len == -1) {
        *ptr = NULL;
        return 0;
    }
    if (*len > len_max) {
        return dec_fail(d, -EBADMSG, "string longer than 32767 bytes");
    }
    if ((size_t)*len > dec_left(d)) {
        return dec_fail(d, -EBADMSG, "length runs past the end");
    }
    return dec_take(d, (size_t)*len, ptr);
}

static int dec_struct(struct kmsg_dec *d, const struct kmsg_desc *desc, uint8_t *dst);

/* One value (a member, or one item of an array) into dst. */
static int dec_value(struct kmsg_dec *d, uint8_t type, const struct kmsg_desc *sub, bool flex,
                     bool nullable, void *dst)
{
    const uint8_t *p;
    int rc;
    switch (type) {
    case KMSG_STRING: {
        struct kstr *s = dst;
        rc = dec_blob(d, flex, 2, nullable, KMSG_STRING_LEN_MAX, &p, &s->len);
        s->ptr = (const char *)p;
        return rc;
    }
    case KMSG_BYTES:
    case KMSG_RECORDS: {
        struct kbytes *b = dst;
        return dec_blob(d, flex, 4, nullable, INT32_MAX, &b->ptr, &b->len);
    }
    case KMSG_STRUCT:
        return dec_struct(d, sub, dst);
    default:
        break;
    }
    size_t n = value_min_wire_size(type, sub, d->version, flex, d->depth);
    rc = dec_take(d, n, &p);
    if (rc < 0) {
        return rc;
    }
    switch (type) {
    case KMSG_BOOL:
        *(bool *)dst = p[0] != 0; /* as Kafka reads it */
        break;
    case KMSG_INT8:
        *(int8_t *)dst = (int8_t)p[0];
        break;
    case KMSG_INT16:
        *(int16_t *)dst = (int16_t)be16_get(p);
        break;
    case KMSG_UINT16:
        *(uint16_t *)dst = be16_get(p);
        break;
    case KMSG_INT32:
        *(int32_t *)dst = (int32_t)be32_get(p);
        break;
    case KMSG_UINT32:
        *(uint32_t *)dst = be32_get(p);
        break;
    case KMSG_INT64:
        *(int64_t *)dst = (int64_t)be64_get(p);
        break;
    case KMSG_FLOAT64: {
        uint64_t bits = be64_get(p);
        memcpy(dst, &bits, sizeof(bits));
        break;
    }
    case KMSG_UUID:
        memcpy(dst, p, 16);
        break;
    default:
        SL_ASSERT(!"unknown field type in a descriptor");
    }
    return 0;
}

static int dec_array(struct kmsg_dec *d, const struct kmsg_field *f, bool flex, bool nullable,
                     struct karray *a)
{
    int32_t count;
    int rc = dec_length(d, flex, 4, nullable, &count);
    if (rc < 0) {
        return rc;
    }
    a->count = count;
    a->items = NULL;
    if (count <= 0) {
        return 0;
    }
    /* Refuse a count the remaining bytes cannot hold before allocating for it. */
    size_t item_min = value_min_wire_size(f->type, f->sub, d->version, flex, d->depth);
    if ((size_t)count > dec_left(d) / SL_MAX(item_min, 1)) {
        return dec_fail(d, -EBADMSG, "array count runs past the end");
    }
    size_t item_size = type_size(f->type, f->sub);
    uint8_t *items = d->arena != NULL ? karena_alloc(d->arena, (size_t)count * item_size) : NULL;
    if (items == NULL) {
        return dec_fail(d, -ENOBUFS, "arrays exceed the decoding arena");
    }
    a->items = items;
    for (int32_t i = 0; i < count; i++) {
        rc = dec_value(d, f->type, f->sub, flex, false, items + (size_t)i * item_size);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

static int dec_field(struct kmsg_dec *d, const struct kmsg_field *f, uint8_t *base)
{
    bool flex = d->flexible && !(f->flags & KMSG_F_NOFLEX);
    bool nullable = field_nullable(f, d->version);
    if (f->flags & KMSG_F_ARRAY) {
        return dec_array(d, f, flex, nullable, (struct karray *)(base + f->offset));
    }
    return dec_value(d, f->type, f->sub, flex, nullable, base + f->offset);
}

static const struct kmsg_field *find_tagged(const struct kmsg_desc *desc, uint32_t tag,
                                            int16_t version)
{
    for (size_t i = 0; i < desc->field_count; i++) {
        const struct kmsg_field *f = &desc->fields[i];
        if (f->tag >= 0 && (uint32_t)f->tag == tag && field_present(f, version)) {
            return f;
        }
    }
    return NULL;
}

/* The tagged-field section at the end of a struct in a flexible version. */
static int dec_tagged(struct kmsg_dec *d, const struct kmsg_desc *desc, uint8_t *dst)
{
    uint32_t count;
    int rc = dec_uvarint(d, &count);
    if (rc < 0) {
        return rc;
    }
    /* Each tagged field takes at least two bytes: its tag and its size. */
    if (count > dec_left(d) / 2) {
        return dec_fail(d, -EBADMSG, "tagged field count runs past the end");
    }
    for (uint32_t i = 0; i < count; i++) {
        uint32_t tag;
        uint32_t size;
        if ((rc = dec_uvarint(d, &tag)) < 0 || (rc = dec_uvarint(d, &size)) < 0) {
            return rc;
        }
        if (size > dec_left(d)) {
            return dec_fail(d, -EBADMSG, "tagged field runs past the end");
        }
        const struct kmsg_field *f = find_tagged(desc, tag, d->version);
        if (f == NULL) {
            d->pos += size; /* unknown tags are skipped, as Kafka does */
            continue;
        }
        const uint8_t *end = d->end;
        d->end = d->pos + size;
        rc = dec_field(d, f, dst);
        if (rc < 0) {
            return rc;
        }
        if (d->pos != d->end) {
            return dec_fail(d, -EBADMSG, "tagged field shorter than its size");
        }
        d->end = end;
    }
    return 0;
}

static int dec_struct(struct kmsg_dec *d, const struct kmsg_desc *desc, uint8_t *dst)
{
    SL_ASSERT(desc != NULL);
    SL_ASSERT(d->depth < KMSG_DEPTH_MAX);
    d->depth++;
    struct_set_defaults(desc, dst, d->depth);
    int rc = 0;
    for (size_t i = 0; i < desc->field_count && rc == 0; i++) {
        const struct kmsg_field *f = &desc->fields[i];
        if (f->tag < 0 && field_present(f, d->version)) {
            rc = dec_field(d, f, dst);
        }
    }
    if (rc == 0 && d->flexible) {
        rc = dec_tagged(d, desc, dst);
    }
    d->depth--;
    return rc;
}

/* Decodes a struct from the start of [p, p + len); *consumed is its length. */
static int decode_prefix(const struct kmsg_desc *desc, int16_t version, const uint8_t *p,
                         size_t len, void *out, struct karena *arena, size_t *consumed,
                         const char **why)
{
    SL_ASSERT(desc != NULL && out != NULL);
    SL_ASSERT(p != NULL || len == 0);
    static const uint8_t nothing[1];
    if (p == NULL) {
        p = nothing; /* an empty body may come as NULL; keep pointer arithmetic defined */
    }
    struct kmsg_dec d = {
        .pos = p,
        .end = p + len,
        .arena = arena,
        .version = version,
        .flexible = version >= desc->flexible_min,
        .depth = 0,
        .why = NULL,
    };
    size_t arena_used = arena != NULL ? arena->used : 0;
    int rc;
    if (version < desc->min_version || version > desc->max_version) {
        rc = dec_fail(&d, -EPROTONOSUPPORT, "version not supported by the codec");
    } else {
        rc = dec_struct(&d, desc, out);
    }
    if (rc < 0) {
        if (arena != NULL) {
            arena->used = arena_used; /* give back what the failed decode took */
        }
        if (why != NULL) {
            *why = d.why;
        }
        return rc;
    }
    SL_ASSERT(d.end == p + len); /* every narrowing for a tagged field was undone */
    *consumed = (size_t)(d.pos - p);
    return 0;
}

int kmsg_decode(const struct kmsg_desc *desc, int16_t version, const uint8_t *p, size_t len,
                void *out, struct karena *arena, const char **why)
{
    size_t consumed = 0;
    size_t arena_used = arena != NULL ? arena->used : 0;
    int rc = decode_prefix(desc, version, p, len, out, arena, &consumed, why);
    if (rc < 0) {
        return rc;
    }
    if (consumed != len) {
        if (arena != NULL) {
            arena->used = arena_used;
        }
        if (why != NULL) {
            *why = "bytes left after the end of the message";
        }
        return -EBADMSG;
    }
    return 0;
}

/* ================================================================= encoding */

struct kmsg_enc {
    struct buf *out; /* NULL: count only */
    size_t size;     /* bytes written or counted */
    int16_t version;
    bool flexible;
    int depth;
};

static int enc_put(struct kmsg_enc *e, const void *p, size_t n)
{
    if (e->out != NULL && n > 0) {
        int rc = buf_put(e->out, p, n);
        if (rc < 0) {
            return rc;
        }
    }
    e->size += n;
    return 0;
}

static int enc_uvarint(struct kmsg_enc *e, uint32_t v)
{
    uint8_t tmp[VARINT32_MAX_BYTES];
    return enc_put(e, tmp, uvarint_put(tmp, v));
}

/* The length (or count) in front of a string, bytes or array; -1 is null. */
static int enc_length(struct kmsg_enc *e, bool flex, size_t width, bool nullable, int32_t len)
{
    if (len < -1 || (len == -1 && !nullable)) {
        return -EINVAL;
    }
    if (flex) {
        return enc_uvarint(e, (uint32_t)len + 1); /* -1 wraps to 0, null */
    }
    uint8_t tmp[4];
    if (width == 2) {
        be16_put(tmp, (uint16_t)len);
    } else {
        be32_put(tmp, (uint32_t)len);
    }
    return enc_put(e, tmp, width);
}

static int enc_blob(struct kmsg_enc *e, bool flex, size_t width, bool nullable, int32_t len_max,
                    const void *ptr, int32_t len)
{
    if (len > len_max || (len > 0 && ptr == NULL)) {
        return -EINVAL;
    }
    int rc = enc_length(e, flex, width, nullable, len);
    if (rc < 0 || len <= 0) {
        return rc;
    }
    return enc_put(e, ptr, (size_t)len);
}

static int enc_struct(struct kmsg_enc *e, const struct kmsg_desc *desc, const uint8_t *src);

static int enc_value(struct kmsg_enc *e, uint8_t type, const struct kmsg_desc *sub, bool flex,
                     bool nullable, const void *src)
{
    uint8_t tmp[16];
    switch (type) {
    case KMSG_BOOL:
        tmp[0] = *(const bool *)src ? 1 : 0;
        return enc_put(e, tmp, 1);
    case KMSG_INT8:
        tmp[0] = (uint8_t)(*(const int8_t *)src);
        return enc_put(e, tmp, 1);
    case KMSG_INT16:
    case KMSG_UINT16:
        be16_put(tmp, *(const uint16_t *)src);
        return enc_put(e, tmp, 2);
    case KMSG_INT32:
    case KMSG_UINT32:
        be32_put(tmp, *(const uint32_t *)src);
        return enc_put(e, tmp, 4);
    case KMSG_INT64:
    case KMSG_FLOAT64: {
        uint64_t bits;
        memcpy(&bits, src, sizeof(bits));
        be64_put(tmp, bits);
        return enc_put(e, tmp, 8);
    }
    case KMSG_UUID:
        return enc_put(e, src, 16);
    case KMSG_STRING: {
        const struct kstr *s = src;
        return enc_blob(e, flex, 2, nullable, KMSG_STRING_LEN_MAX, s->ptr, s->len);
    }
    case KMSG_BYTES:
    case KMSG_RECORDS: {
        const struct kbytes *b = src;
        return enc_blob(e, flex, 4, nullable, INT32_MAX, b->ptr, b->len);
    }
    case KMSG_STRUCT:
        return enc_struct(e, sub, src);
    }
    SL_ASSERT(!"unknown field type in a descriptor");
    return -EINVAL;
}

static int enc_field(struct kmsg_enc *e, const struct kmsg_field *f, const uint8_t *base)
{
    bool flex = e->flexible && !(f->flags & KMSG_F_NOFLEX);
    bool nullable = field_nullable(f, e->version);
    const void *src = base + f->offset;
    if (!(f->flags & KMSG_F_ARRAY)) {
        return enc_value(e, f->type, f->sub, flex, nullable, src);
    }
    const struct karray *a = src;
    if (a->count > 0 && a->items == NULL) {
        return -EINVAL;
    }
    int rc = enc_length(e, flex, 4, nullable, a->count);
    size_t item_size = type_size(f->type, f->sub);
    for (int32_t i = 0; rc == 0 && i < a->count; i++) {
        rc = enc_value(e, f->type, f->sub, flex, false,
                       (const uint8_t *)a->items + (size_t)i * item_size);
    }
    return rc;
}

/* The tagged field with the smallest tag above `after` that must be written. */
static const struct kmsg_field *next_tagged(const struct kmsg_desc *desc, const uint8_t *src,
                                            int16_t version, int64_t after, int depth)
{
    const struct kmsg_field *next = NULL;
    for (size_t i = 0; i < desc->field_count; i++) {
        const struct kmsg_field *f = &desc->fields[i];
        if (f->tag > after && field_present(f, version) && (next == NULL || f->tag < next->tag) &&
            !field_is_default(f, src, version, depth)) {
            next = f;
        }
    }
    return next;
}

static int enc_tagged(struct kmsg_enc *e, const struct kmsg_desc *desc, const uint8_t *src)
{
    uint32_t count = 0;
    for (const struct kmsg_field *f = next_tagged(desc, src, e->version, -1, e->depth); f != NULL;
         f = next_tagged(desc, src, e->version, f->tag, e->depth)) {
        count++;
    }
    int rc = enc_uvarint(e, count);
    for (const struct kmsg_field *f = next_tagged(desc, src, e->version, -1, e->depth);
         rc == 0 && f != NULL; f = next_tagged(desc, src, e->version, f->tag, e->depth)) {
        /* Measure the value first: its size goes in front of it. */
        struct kmsg_enc counter = {NULL, 0, e->version, e->flexible, e->depth};
        rc = enc_field(&counter, f, src);
        if (rc == 0 && counter.size > INT32_MAX) {
            rc = -EINVAL;
        }
        if (rc == 0) {
            rc = enc_uvarint(e, (uint32_t)f->tag);
        }
        if (rc == 0) {
            rc = enc_uvarint(e, (uint32_t)counter.size);
        }
        if (rc == 0) {
            rc = enc_field(e, f, src);
        }
    }
    return rc;
}

static int enc_struct(struct kmsg_enc *e, const struct kmsg_desc *desc, const uint8_t *src)
{
    SL_ASSERT(desc != NULL);
    SL_ASSERT(e->depth < KMSG_DEPTH_MAX);
    e->depth++;
    int rc = 0;
    for (size_t i = 0; i < desc->field_count && rc == 0; i++) {
        const struct kmsg_field *f = &desc->fields[i];
        if (f->tag < 0 && field_present(f, e->version)) {
            rc = enc_field(e, f, src);
        }
    }
    if (rc == 0 && e->flexible) {
        rc = enc_tagged(e, desc, src);
    }
    e->depth--;
    return rc;
}

static int encode_common(const struct kmsg_desc *desc, int16_t version, const void *in,
                         struct buf *out, size_t *size)
{
    SL_ASSERT(desc != NULL && in != NULL);
    if (version < desc->min_version || version > desc->max_version) {
        return -EPROTONOSUPPORT;
    }
    struct kmsg_enc e = {out, 0, version, version >= desc->flexible_min, 0};
    size_t start = out != NULL ? out->len : 0;
    int rc = enc_struct(&e, desc, in);
    if (rc < 0) {
        if (out != NULL) {
            out->len = start; /* leave the buffer as it was */
        }
        return rc;
    }
    SL_ASSERT(out == NULL || out->len == start + e.size);
    *size = e.size;
    return 0;
}

int kmsg_encode(const struct kmsg_desc *desc, int16_t version, const void *in, struct buf *out)
{
    SL_ASSERT(out != NULL);
    size_t size;
    return encode_common(desc, version, in, out, &size);
}

int kmsg_encoded_size(const struct kmsg_desc *desc, int16_t version, const void *in, size_t *size)
{
    return encode_common(desc, version, in, NULL, size);
}

/* ========================================================= APIs and headers */

const struct kmsg_api *kmsg_api_find(int16_t api_key)
{
    /* Twenty entries: a scan costs less than keeping an index in step. */
    for (size_t i = 0; i < KMSG_API_COUNT; i++) {
        if (kmsg_apis[i].key == api_key) {
            return &kmsg_apis[i];
        }
    }
    return NULL;
}

bool kmsg_api_version_valid(const struct kmsg_api *api, int16_t version)
{
    return version >= api->min_version && version <= api->max_version;
}

bool kmsg_api_flexible(const struct kmsg_api *api, int16_t version)
{
    return version >= api->flexible_min;
}

int16_t kmsg_request_header_version(int16_t api_key, int16_t api_version)
{
    const struct kmsg_api *api = kmsg_api_find(api_key);
    return api != NULL && kmsg_api_flexible(api, api_version) ? 2 : 1;
}

int kmsg_request_header_decode(const uint8_t *p, size_t len, struct kmsg_request_header *hdr,
                               size_t *consumed, const char **why)
{
    /* The key and version come first in every header version and decide
     * which header version the rest is in. */
    if (len < 4) {
        if (why != NULL) {
            *why = "truncated: a field runs past the end";
        }
        return -EBADMSG;
    }
    int16_t version = kmsg_request_header_version((int16_t)be16_get(p), (int16_t)be16_get(p + 2));
    return decode_prefix(&kmsg_request_header_desc, version, p, len, hdr, NULL, consumed, why);
}

int kmsg_request_header_encode(struct buf *out, const struct kmsg_request_header *hdr)
{
    int16_t version = kmsg_request_header_version(hdr->request_api_key, hdr->request_api_version);
    return kmsg_encode(&kmsg_request_header_desc, version, hdr, out);
}

int16_t kmsg_response_header_version(int16_t api_key, int16_t api_version)
{
    if (api_key == KMSG_API_API_VERSIONS) {
        return 0;
    }
    const struct kmsg_api *api = kmsg_api_find(api_key);
    return api != NULL && kmsg_api_flexible(api, api_version) ? 1 : 0;
}

int kmsg_response_header_encode(struct buf *out, int32_t correlation_id, bool flexible)
{
    struct kmsg_response_header hdr = {.correlation_id = correlation_id};
    return kmsg_encode(&kmsg_response_header_desc, flexible ? 1 : 0, &hdr, out);
}

int kmsg_response_header_decode(const uint8_t *p, size_t len, bool flexible,
                                int32_t *correlation_id, size_t *consumed, const char **why)
{
    struct kmsg_response_header hdr;
    int rc = decode_prefix(&kmsg_response_header_desc, flexible ? 1 : 0, p, len, &hdr, NULL,
                           consumed, why);
    if (rc == 0) {
        *correlation_id = hdr.correlation_id;
    }
    return rc;
}
