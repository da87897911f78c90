/* xtext.c: RFC 3461 4 "xtext", the encoding of DSN's ENVID and ORCPT values and of RFC 4954 5's
 * AUTH= parameter. xchar = any ASCII CHAR between "!" (33) and "~" (126) inclusive, except "+"
 * and "="; hexchar = "+" and two upper-case hex digits. Pure: no I/O, no allocation. */
#include "xtext.h"

/* Value of an upper-case hex digit, or -1 (RFC 3461 4: "+" is followed by 0-9 / A-F only). */
static int upper_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool is_xchar(unsigned char c)
{
    return c >= 33 && c <= 126 && c != '+' && c != '=';
}

bool xtext_decode(const char *in, size_t len, char *out, size_t cap, size_t *out_len)
{
    size_t o = 0;
    if (cap == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '+') {
            if (len - i < 3)
                return false;
            int hi = upper_hex_value((unsigned char)in[i + 1]);
            int lo = upper_hex_value((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        } else if (!is_xchar(c)) {
            return false;
        }
        if (o + 1 >= cap)
            return false; /* no room for this octet and the NUL */
        out[o++] = (char)c;
    }
    out[o] = '\0';
    if (out_len != NULL)
        *out_len = o;
    return true;
}

size_t xtext_encode(const char *in, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        char enc[3];
        size_t n = 0;
        if (is_xchar(c)) {
            enc[n++] = (char)c;
        } else {
            enc[n++] = '+';
            enc[n++] = hex[c >> 4];
            enc[n++] = hex[c & 0x0F];
        }
        for (size_t k = 0; k < n; k++, o++)
            if (o + 1 < cap)
                out[o] = enc[k];
    }
    if (cap > 0)
        out[o < cap ? o : cap - 1] = '\0';
    return o;
}
