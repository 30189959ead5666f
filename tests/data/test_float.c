/* The hand-written number parser against strtof, bit for bit: random
 * floats in several printings, random digit strings, exact rounding
 * midpoints, and the grammar's edge cases. */
#include <criterion/criterion.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/io_internal.h"

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Parse s both ways; they must agree on validity and bits. */
static void check(const char *s)
{
    size_t len = strlen(s);
    float v = -1;
    int st;
    const char *end = io_parse_f32(s, s + len, &v, &st);
    char *e2;
    errno = 0;
    float r = strtof(s, &e2);
    int range = errno == ERANGE && isinf(r);
    cr_assert_eq(end, s + len, "'%s': parsed %zu of %zu bytes", s, (size_t)(end - s), len);
    cr_assert_eq(e2, s + len, "'%s': strtof stopped early", s);
    if (range) {
        cr_assert_eq(st, IO_NUM_RANGE, "'%s': overflow not reported", s);
        return;
    }
    cr_assert_eq(st, IO_NUM_OK, "'%s': status %d", s, st);
    uint32_t a, b;
    memcpy(&a, &v, 4);
    memcpy(&b, &r, 4);
    cr_assert_eq(a, b, "'%s': parsed %a, strtof %a", s, (double)v, (double)r);
}

Test(float, random_floats_printed, .timeout = 120)
{
    static const char *fmts[] = {"%.9g", "%.6g", "%.8g", "%.17g", "%.3e", "%f", "%.12f", "%g"};
    char buf[512];
    for (int i = 0; i < 400000; i++) {
        uint32_t bits = (uint32_t)next();
        float f;
        memcpy(&f, &bits, 4);
        if (!isfinite(f)) continue;
        snprintf(buf, sizeof buf, fmts[i % 8], (double)f);
        check(buf);
    }
}

Test(float, random_normals_and_integers)
{
    char buf[128];
    for (int i = 0; i < 200000; i++) {
        double u = ((double)(next() >> 11) + 0.5) * 0x1.0p-53;
        double v = (u - 0.5) * pow(10, (int)(next() % 12) - 4);
        snprintf(buf, sizeof buf, i % 2 ? "%.9g" : "%.10g", v);
        check(buf);
        snprintf(buf, sizeof buf, "%lld", (long long)(next() % 100000000000ULL) - 50000000000LL);
        check(buf);
    }
}

Test(float, random_digit_strings)
{
    char buf[128];
    for (int i = 0; i < 300000; i++) {
        size_t k = 0;
        if (next() % 2) buf[k++] = '-';
        int nd = 1 + (int)(next() % 25), dot = (int)(next() % (nd + 1));
        for (int j = 0; j < nd; j++) {
            if (j == dot && j) buf[k++] = '.';
            buf[k++] = (char)('0' + next() % 10);
        }
        if (next() % 3 == 0) k += (size_t)sprintf(buf + k, "e%d", (int)(next() % 90) - 50);
        buf[k] = '\0';
        check(buf);
    }
}

/* Decimal strings exactly halfway between two floats: round to even, where
 * a double-then-float conversion would go wrong. */
Test(float, exact_midpoints)
{
    char buf[128];
    for (int i = 0; i < 100000; i++) {
        uint32_t bits = (uint32_t)(next() % 0x7F000000u) + 0x00800000u;
        float f, g;
        memcpy(&f, &bits, 4);
        bits++;
        memcpy(&g, &bits, 4);
        double mid = ((double)f + (double)g) / 2; /* exact in double */
        snprintf(buf, sizeof buf, "%.60g", mid);
        check(buf);
        /* and just beside it */
        snprintf(buf, sizeof buf, "%.17g", nextafter(mid, 0));
        check(buf);
        snprintf(buf, sizeof buf, "%.17g", nextafter(mid, 1e300));
        check(buf);
    }
}

Test(float, edge_cases)
{
    static const char *ok[] = {"0",
                               "-0",
                               "+0",
                               "0.0",
                               ".5",
                               "5.",
                               "1e0",
                               "1E+2",
                               "1e-2",
                               "3.4028235e38",
                               "1e-45",
                               "1e-46",
                               "1.17549435e-38",
                               "0.000000000000000000000000001",
                               "123456789012345678901234567890",
                               "9007199254740993",
                               "1e22",
                               "1e23",
                               "4.9406564584124654e-324",
                               "1e-400",
                               "00000000000000000000000000000000001.5",
                               "0.1000000000000000000000000000000000000001"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) check(ok[i]);
    check("3.4028236e38");
    check("1e39");
    check("-1e100000");
    static const char *bad[] = {"", "-", "+", ".", "e5", "-.e1", "nan", "inf", "x1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        float v;
        int st;
        const char *s = bad[i];
        const char *e = io_parse_f32(s, s + strlen(s), &v, &st);
        cr_assert(e == s && st == IO_NUM_BAD, "'%s' accepted", s);
    }
    /* a number stops at the first byte that cannot continue it */
    const char *s = "1.5e3,7";
    float v;
    int st;
    const char *e = io_parse_f32(s, s + strlen(s), &v, &st);
    cr_assert_eq(e, s + 5);
    cr_assert_eq(v, 1500.0f);
    /* "1e" and "1e+" : the exponent is missing */
    e = io_parse_f32("1e+", (const char *)"1e+" + 3, &v, &st);
    cr_assert_eq(st, IO_NUM_BAD);
    /* the end pointer is respected: no reading past it */
    const char *t = "12345";
    e = io_parse_f32(t, t + 3, &v, &st);
    cr_assert_eq(e, t + 3);
    cr_assert_eq(v, 123.0f);
}
