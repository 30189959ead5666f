/* One instance of a register loop per row count: F(R, ...) with R the
 * compile-time row count 1..6 or 1..12 for a run-time mr (larger mr take
 * the last). The loops run the FMAs of R rows, each row's the same in
 * every instance, so a short tile has a full tile's bits. Included from
 * the AVX2 and AVX-512 files. */
#ifndef DPT_K_ROWS_H
#define DPT_K_ROWS_H

#define DPT_ROWS_1_5(F, ...)                                                                       \
    case 1:                                                                                        \
        F(1, __VA_ARGS__);                                                                         \
        break;                                                                                     \
    case 2:                                                                                        \
        F(2, __VA_ARGS__);                                                                         \
        break;                                                                                     \
    case 3:                                                                                        \
        F(3, __VA_ARGS__);                                                                         \
        break;                                                                                     \
    case 4:                                                                                        \
        F(4, __VA_ARGS__);                                                                         \
        break;                                                                                     \
    case 5:                                                                                        \
        F(5, __VA_ARGS__);                                                                         \
        break;

#define DPT_BY_ROWS6(mr, F, ...)                                                                   \
    switch (mr) {                                                                                  \
        DPT_ROWS_1_5(F, __VA_ARGS__)                                                               \
    default:                                                                                       \
        F(6, __VA_ARGS__);                                                                         \
        break;                                                                                     \
    }

#define DPT_BY_ROWS12(mr, F, ...)                                                                  \
    switch (mr) {                                                                                  \
        DPT_ROWS_1_5(F, __VA_ARGS__)                                                               \
    case 6:                                                                                        \
        F(6, __VA_ARGS__);                                                                         \
        break;                                                                                     \
    case 7:                                                                                        \
        F(7, __VA_ARGS__);                                                                         \
        break;                                                                                     \
    case 8:                                                                                        \
        F(8, __VA_ARGS__);                                                                         \
        break;                                                                                     \
    case 9:                                                                                        \
        F(9, __VA_ARGS__);                                                                         \
        break;                                                                                     \
    case 10:                                                                                       \
        F(10, __VA_ARGS__);                                                                        \
        break;                                                                                     \
    case 11:                                                                                       \
        F(11, __VA_ARGS__);                                                                        \
        break;                                                                                     \
    default:                                                                                       \
        F(12, __VA_ARGS__);                                                                        \
        break;                                                                                     \
    }

#endif
