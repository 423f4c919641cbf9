/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kafka wire codec: one table-driven encoder and decoder for the bodies of
 * every request and response in proto/kmsg_gen.h, and the request and
 * response headers.
 *
 * Each message is described by tables generated from Kafka's own JSON schemas
 * (scripts/gen-codec.py): per struct, one row per field with its type, the
 * versions it exists in, the versions it may be null in, its tag when it is a
 * tagged field, where it lives in the C struct and its default. A new version
 * of an API is a change of those rows, never a new parser.
 *
 * C representation of the schema types:
 *   bool, int8..int64, uint16, uint32, float64   bool, int8_t..., double
 *   uuid                                         uint8_t[16]
 *   string                                       struct kstr   (len -1: null)
 *   bytes, records                               struct kbytes (len -1: null)
 *   [] of anything                               struct karray (count -1: null)
 *   struct                                       the nested C struct, inline
 *
 * Ownership. Decoding is zero-copy: every kstr and kbytes of a decoded
 * message points into the frame it was decoded from, and array items live in
 * the caller's arena, so a decoded message is valid while both the frame and
 * the arena are (until karena_reset). Encoding borrows the message and
 * appends to the caller's buf.
 *
 * Versions. A field absent from the version being decoded holds its schema
 * default; a field absent from the version being encoded is not written,
 * whatever its value. Kafka's Java refuses to encode a non-default value of a
 * field that is absent from the version unless the schema marks the field
 * "ignorable"; we skip every such field instead, so that a handler may fill
 * the newest form of a response and the codec writes what the client's
 * version has (the generator therefore does not record "ignorable").
 *
 * Tagged fields. A tagged field is written only when it differs from its
 * default, in ascending order of tag, as Kafka does; on decode, tags may come
 * in any order (Kafka's readers do not check either) and unknown tags are
 * skipped.
 */
#ifndef SL_PROTO_KMSG_H
#define SL_PROTO_KMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* A string: ptr is not NUL-terminated. len -1 is null (ptr NULL). */
struct kstr {
    const char *ptr;
    int32_t len;
};

/* A C string as a kstr (borrowed; NULL gives the null string). */
static inline struct kstr kstr_cstr(const char *s)
{
    return (struct kstr){s, s != NULL ? (int32_t)__builtin_strlen(s) : -1};
}

/* Bytes or a record set: len -1 is null (ptr NULL). */
struct kbytes {
    const uint8_t *ptr;
    int32_t len;
};

/* An array: items points to count items of the member's item type (named in
 * its comment in kmsg_gen.h). count -1 is null; items is NULL when count <= 0. */
struct karray {
    void *items;
    int32_t count;
};

/*
 * A bump allocator over memory the caller provides, for the arrays of decoded
 * messages: no allocation per field, one reset per request, and a hard cap, so
 * a frame cannot make the decoder hold more than the caller set aside.
 */
struct karena {
    uint8_t *base;
    size_t cap;
    size_t used; /* used <= cap */
};

/* Borrows mem (cap bytes) until the arena is no longer used. */
void karena_init(struct karena *a, void *mem, size_t cap);
/* Frees everything allocated: messages decoded into the arena become invalid. */
void karena_reset(struct karena *a);
/* n bytes aligned for any member type, or NULL when the arena is full. */
void *karena_alloc(struct karena *a, size_t n);

/* ---- descriptor tables (filled by proto/kmsg_gen.c) ---- */

enum kmsg_type {
    KMSG_BOOL,
    KMSG_INT8,
    KMSG_INT16,
    KMSG_UINT16,
    KMSG_INT32,
    KMSG_UINT32,
    KMSG_INT64,
    KMSG_FLOAT64,
    KMSG_UUID,
    KMSG_STRING,
    KMSG_BYTES,
    KMSG_RECORDS,
    KMSG_STRUCT,
};

/* The field is an array of its type. */
#define KMSG_F_ARRAY 0x01
/* The field keeps its non-compact encoding in flexible versions (the request
 * header's client_id, which old brokers must be able to read). */
#define KMSG_F_NOFLEX 0x02

/* Upper end of an open version range ("3+"). */
#define KMSG_VERSION_MAX INT16_MAX

struct kmsg_desc;

struct kmsg_field {
    uint8_t type;  /* enum kmsg_type: of the value, or of each item of an array */
    uint8_t flags; /* KMSG_F_* */
    int16_t version_min, version_max;   /* the field exists in these versions */
    int16_t nullable_min, nullable_max; /* -1, -1: never nullable */
    int32_t tag;                        /* tag in flexible versions, or -1 */
    uint32_t offset;                    /* of the member in the C struct */
    const struct kmsg_desc *sub;        /* KMSG_STRUCT: the nested struct */
    /* Integers and bool: the default. Strings, bytes and arrays: -1 when the
     * default is null, 0 when it is empty. Others: 0. */
    int64_t default_value;
};

/* A struct: the message itself or one nested in it. The version ranges are
 * the message's, copied into each of its structs. */
struct kmsg_desc {
    const char *name; /* schema path, such as "FetchRequest.Topics" */
    const struct kmsg_field *fields;
    size_t field_count;
    size_t size; /* sizeof the C struct */
    int16_t min_version, max_version;
    int16_t flexible_min; /* first flexible version */
};

struct kmsg_api {
    int16_t key;
    const char *name; /* Kafka's name: "Produce" */
    const struct kmsg_desc *request;
    const struct kmsg_desc *response;
    int16_t min_version, max_version; /* what the codec can encode and decode */
    int16_t flexible_min;
};

#include "proto/kmsg_gen.h"

/* ---- bodies ---- */

/*
 * Sets every member of msg (a struct of desc's type) to its schema default,
 * nested structs included: the starting point of a message to encode, so that
 * a member left alone carries Kafka's default (-1 for a leader epoch, null
 * for an optional string) rather than zero. Array items are not covered:
 * initialize each with kmsg_init of the item struct's descriptor.
 */
void kmsg_init(const struct kmsg_desc *desc, void *msg);

/*
 * Decodes a message body of the given version from exactly len bytes at p
 * into out (a struct of desc's type). Every length and count is checked
 * against the bytes that remain before anything is read or allocated.
 * Returns 0, or:
 *   -EPROTONOSUPPORT  version outside desc's range
 *   -EBADMSG          malformed: truncated, a bad length, a null where the
 *                     version does not allow one, bytes left after the end
 *   -ENOBUFS          the arrays do not fit in the arena
 * and points *why (when why is not NULL) at a static sentence saying what was
 * wrong. On failure out holds garbage and the arena is as it was on entry.
 * arena may be NULL for messages without arrays.
 */
int kmsg_decode(const struct kmsg_desc *desc, int16_t version, const uint8_t *p, size_t len,
                void *out, struct karena *arena, const char **why);

/*
 * Appends the encoding of in (a struct of desc's type) at the given version
 * to out. Returns 0, or -EPROTONOSUPPORT (version), -ENOBUFS or -ENOMEM (out
 * is full), -EINVAL (the message cannot be encoded: a null where the version
 * does not allow one, a negative length other than -1, a string longer than
 * 32767 bytes). On failure out is as it was on entry.
 */
int kmsg_encode(const struct kmsg_desc *desc, int16_t version, const void *in, struct buf *out);

/* The number of bytes kmsg_encode would append, in *size; same errors. */
int kmsg_encoded_size(const struct kmsg_desc *desc, int16_t version, const void *in, size_t *size);

/* ---- APIs and versions ---- */

/* The API with this key, or NULL when the codec does not know it. */
const struct kmsg_api *kmsg_api_find(int16_t api_key);
/* Whether the codec can encode and decode this version of the API. */
bool kmsg_api_version_valid(const struct kmsg_api *api, int16_t version);
/* Whether this version of the API uses flexible encodings and tagged fields.
 * Holds also for versions above the range, as in Kafka, so that a header of a
 * request too new for us is still read correctly. */
bool kmsg_api_flexible(const struct kmsg_api *api, int16_t version);

/* ---- headers ---- */

/* Request header version for a request: 2 for a flexible version of a known
 * API, 1 otherwise (an unknown API's header is read as v1, whose client_id is
 * all the broker needs to answer or log it). */
int16_t kmsg_request_header_version(int16_t api_key, int16_t api_version);

/*
 * Decodes the request header at the start of a frame (the frame without its
 * 4-byte size): api key, api version, correlation id, client id (null or
 * pointing into the frame) and, in header v2, tagged fields (skipped). The
 * header version follows from the key and version (above). *consumed is the
 * header's length: the body starts there. Errors as kmsg_decode, except that
 * bytes after the header are the body, not an error.
 */
int kmsg_request_header_decode(const uint8_t *p, size_t len, struct kmsg_request_header *hdr,
                               size_t *consumed, const char **why);

/* Appends a request header of the version its api key and version call for. */
int kmsg_request_header_encode(struct buf *out, const struct kmsg_request_header *hdr);

/* Response header version for a response: 1 for a flexible version, else 0;
 * always 0 for ApiVersions, so that a client that does not yet know which
 * versions the broker speaks can read the answer (KIP-511). */
int16_t kmsg_response_header_version(int16_t api_key, int16_t api_version);

/* Appends a response header: the correlation id, then an empty tagged-field
 * section when flexible (header v1). */
int kmsg_response_header_encode(struct buf *out, int32_t correlation_id, bool flexible);

/* Decodes a response header (v1 when flexible, else v0); *consumed as above. */
int kmsg_response_header_decode(const uint8_t *p, size_t len, bool flexible,
                                int32_t *correlation_id, size_t *consumed, const char **why);

#endif
