/* Every input the fuzzers ever crashed on (tests/data/crashes/TARGET/FILE,
 * saved there by scripts/fuzz) replayed through the same harness: each must
 * now load or fail with a one-line message, never crash. The fuzzers' seed
 * inputs (fuzz/seeds) go through too, and must load. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdlib.h>

#include "../../fuzz/fuzz_one.h"

/* Replay every file of DIR/TARGET; must_load: each must load (the seeds). */
static int replay_dir(const char *base, const char *target, int must_load)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", base, target);
    DIR *dp = opendir(dir);
    cr_assert(dp, "no directory %s", dir);
    struct dirent *e;
    int count = 0;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "README")) continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        FILE *f = fopen(p, "rb");
        cr_assert(f, "cannot read %s", p);
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        rewind(f);
        uint8_t *buf = malloc(len > 0 ? (size_t)len : 1);
        cr_assert_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
        fclose(f);
        dpt_clear_error();
        int rc = dpt_fuzz_one(target, buf, (size_t)len);
        cr_assert(!must_load || rc == 0, "%s: %s", p, dpt_last_error());
        if (rc) {
            const char *m = dpt_last_error();
            cr_assert(m[0] && !strchr(m, '\n'), "%s: rc %d, message '%s'", p, rc, m);
        }
        free(buf);
        count++;
    }
    closedir(dp);
    return count;
}

static void replay(const char *target)
{
    replay_dir(DPT_CRASH_DIR, target, 0);
    /* the seed inputs are valid files: the harness must read them as such */
    cr_assert_gt(replay_dir(DPT_SEED_DIR, target, 1), 0, "no seeds for %s", target);
}

Test(crashes, csv)
{
    replay("csv");
}
Test(crashes, svmlight)
{
    replay("svmlight");
}
Test(crashes, idx)
{
    replay("idx");
}
Test(crashes, dptb)
{
    replay("dptb");
}
Test(crashes, modelfile)
{
    replay("modelfile");
}
Test(crashes, checkpoint)
{
    replay("checkpoint");
}
