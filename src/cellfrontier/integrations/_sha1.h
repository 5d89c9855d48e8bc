/* SHA-1 (FIPS 180-4) of a short message, for stable task ids computed in compiled code.
 *
 * Only what the core needs: one function that hashes a whole buffer at once.  SHA-1 is used
 * here as an id function compatible with an existing id format, not for security.
 */
#ifndef CELLFRONTIER_SHA1_H
#define CELLFRONTIER_SHA1_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t cf_rol32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

#define CF_SHA1_ROUNDS(from, to, f_expr, k)                               \
    for (i = (from); i < (to); i++) {                                         \
        t = cf_rol32(a, 5) + (f_expr) + e + (uint32_t)(k) + w[i];              \
        e = d; d = c; c = cf_rol32(b, 30); b = a; a = t;                      \
    }

static void cf_sha1_block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80];
    uint32_t a, b, c, d, e, t;
    int i;
    for (i = 0; i < 16; i++) {
        w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) |
               ((uint32_t)p[4 * i + 2] << 8) | (uint32_t)p[4 * i + 3];
    }
    for (i = 16; i < 80; i++) {
        w[i] = cf_rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }
    a = h[0]; b = h[1]; c = h[2]; d = h[3]; e = h[4];
    /* Four stages of twenty rounds, each with its own mixing function and constant. */
    CF_SHA1_ROUNDS(0, 20, (b & c) | (~b & d), 0x5A827999u)
    CF_SHA1_ROUNDS(20, 40, b ^ c ^ d, 0x6ED9EBA1u)
    CF_SHA1_ROUNDS(40, 60, (b & c) | (b & d) | (c & d), 0x8F1BBCDCu)
    CF_SHA1_ROUNDS(60, 80, b ^ c ^ d, 0xCA62C1D6u)
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
}

#undef CF_SHA1_ROUNDS

/* Write the 20-byte SHA-1 digest of data[0:len] to out. */
static void cf_sha1(const unsigned char *data, size_t len, unsigned char out[20])
{
    uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
    unsigned char tail[128];
    size_t full = len - (len % 64), rest = len % 64, tail_len;
    uint64_t bits = (uint64_t)len * 8u;
    size_t i;
    for (i = 0; i < full; i += 64) {
        cf_sha1_block(h, data + i);
    }
    memset(tail, 0, sizeof tail);
    if (rest) {
        memcpy(tail, data + full, rest);
    }
    tail[rest] = 0x80;
    tail_len = rest + 1 + 8 <= 64 ? 64 : 128;
    for (i = 0; i < 8; i++) {
        tail[tail_len - 1 - i] = (unsigned char)(bits >> (8 * i));
    }
    cf_sha1_block(h, tail);
    if (tail_len == 128) {
        cf_sha1_block(h, tail + 64);
    }
    for (i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(h[i] >> 8);
        out[4 * i + 3] = (unsigned char)h[i];
    }
}

#endif
