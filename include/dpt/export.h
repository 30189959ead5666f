/* DPT_API marks the public API. libdpt is built with hidden symbol
 * visibility, so a function is exported from the shared library only when
 * its declaration here carries this mark. */
#ifndef DPT_EXPORT_H
#define DPT_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define DPT_API __attribute__((visibility("default")))
#else
#define DPT_API
#endif

#endif
