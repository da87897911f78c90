/* test_maildir.c: maildir_path's template expansion and its refusals (hostile local parts and
 * domains, broken templates, lengths), and maildir_deliver on a real file system: the exact
 * bytes stored, the file names (unique, ",S=" size, escaped host), directory modes, failures
 * (read errors, short queue files, unusable paths, a full disk on a tiny tmpfs when root) that
 * leave nothing behind, and that nothing shows in new/ before the message is complete. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir.h"

#define DIR_MAX 128

struct fx {
    char root[DIR_MAX];
    char template[DIR_MAX + 64];
    struct spool_envelope env;
    char *rcpts[2];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    snprintf(f->root, sizeof f->root, "/tmp/test_maildir.XXXXXX");
    if (mkdtemp(f->root) == NULL)
        return -1;
    snprintf(f->template, sizeof f->template, "%s/mail/%%d/%%u/Maildir", f->root);
    snprintf(f->env.sender, sizeof f->env.sender, "alice@example.com");
    f->rcpts[0] = "Bob@Example.NET";
    f->rcpts[1] = "carol@example.net";
    f->env.rcpts = f->rcpts;
    f->env.n_rcpts = 2;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[DIR_MAX + 32];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
    int rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static FILE *file_of(const char *data, size_t n)
{
    FILE *fp = tmpfile();
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    rewind(fp);
    return fp;
}

/* Number of entries in dir (without . and ..); the last name into last (may be NULL). */
static int count_entries(const char *dir, char *last, size_t cap)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        if (last != NULL)
            snprintf(last, cap, "%s", e->d_name);
    }
    closedir(d);
    return n;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, fp);
    fclose(fp);
    return buf;
}

static void deliver_bytes(struct fx *f, size_t index, const char *msg, size_t n,
                          struct delivery_rcpt_result *res)
{
    f->env.size = n;
    FILE *fp = file_of(msg, n);
    maildir_deliver(f->template, &f->env, index, fp, "mx.example.com", res);
    fclose(fp);
}

/* --- maildir_path --- */

static void test_path_expansion(void **state)
{
    (void)state;
    char out[256], err[200];
    assert_int_equal(maildir_path("/srv/mail/%d/%u/Maildir", "Bob@Example.NET", out, sizeof out,
                                  err, sizeof err),
                     0);
    assert_string_equal(out, "/srv/mail/example.net/bob/Maildir");
    assert_int_equal(
        maildir_path("/srv/%a/100%%/", "Bob@Example.NET", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "/srv/bob@example.net/100%");
    /* a plus detail and other legal octets stay */
    assert_int_equal(
        maildir_path("/m/%u", "bob+tag=x@example.net", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "/m/bob+tag=x");
}

static void test_path_bad_template(void **state)
{
    (void)state;
    char out[256], err[200];
    assert_int_equal(maildir_path("srv/%u", "bob@x.org", out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "absolute"));
    assert_int_equal(maildir_path("/srv/%n", "bob@x.org", out, sizeof out, err, sizeof err), -1);
    assert_non_null(strstr(err, "escape"));
    assert_int_equal(maildir_path("/srv/%", "bob@x.org", out, sizeof out, err, sizeof err), -1);
    assert_int_equal(maildir_path(NULL, "bob@x.org", out, sizeof out, err, sizeof err), -1);
}

static void test_path_hostile_pieces(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "../x@example.com",
        ".hidden@example.com",
        "a/b@example.com",
        "..@example.com",
        ".@example.com",
        "a\x01"
        "b@example.com",
        "a\x7f@example.com",
        "tab\there@example.com",
        "@example.com",
        "bob@..",
        "bob@.example.com",
        "bob@exa/mple.com",
        "bob@",
        "bob",
    };
    char out[256], err[200];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (maildir_path("/srv/mail/%d/%u", bad[i], out, sizeof out, err, sizeof err) != -1)
            fail_msg("accepted \"%s\" as %s", bad[i], out);
        assert_true(err[0] != '\0');
    }
    /* %a: the whole address is one component */
    assert_int_equal(maildir_path("/srv/%a", "a/b@x.org", out, sizeof out, err, sizeof err), -1);
    assert_int_equal(maildir_path("/srv/%a", ".x@x.org", out, sizeof out, err, sizeof err), -1);
    /* without %d an address without a domain is fine */
    assert_int_equal(maildir_path("/srv/%u", "postmaster", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "/srv/postmaster");
}

static void test_path_lengths(void **state)
{
    (void)state;
    char out[256], err[200], addr[400];
    memset(addr, 'a', 300);
    snprintf(addr + 300, sizeof addr - 300, "@x.org");
    assert_int_equal(maildir_path("/srv/%u", addr, out, sizeof out, err, sizeof err), -1);
    /* the output buffer is too small */
    char small[12];
    assert_int_equal(
        maildir_path("/srv/%d/%u", "bob@example.org", small, sizeof small, err, sizeof err), -1);
}

/* --- maildir_deliver --- */

static void test_deliver_exact_bytes(void **state)
{
    struct fx *f = *state;
    static const char msg[] = "Subject: hi\r\n\r\nline 1\r\nlone\rcr\r\n.dot\r\n\r\nno end";
    static const char want[] = "Return-Path: <alice@example.com>\n"
                               "Delivered-To: Bob@Example.NET\n"
                               "Subject: hi\n\nline 1\nlone\rcr\n.dot\n\nno end";
    struct delivery_rcpt_result res;
    deliver_bytes(f, 0, msg, strlen(msg), &res);
    assert_int_equal(res.outcome, DELIVERY_OK);
    assert_string_equal(res.enhanced, "2.0.0");
    assert_string_equal(res.stage, "maildir");
    char dir[DIR_MAX + 64], name[256], path[DIR_MAX + 400];
    snprintf(dir, sizeof dir, "%s/mail/example.net/bob/Maildir/new", f->root);
    assert_int_equal(count_entries(dir, name, sizeof name), 1);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len;
    char *got = read_all(path, &len);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(got, want, len);
    free(got);
    /* the name: TIME.M<usec>P<pid>Q<n>.<host>,S=<size> */
    char suffix[64];
    snprintf(suffix, sizeof suffix, ".mx.example.com,S=%zu", strlen(want));
    assert_true(strlen(name) > strlen(suffix));
    assert_string_equal(name + strlen(name) - strlen(suffix), suffix);
    char pid[32];
    snprintf(pid, sizeof pid, "P%ldQ", (long)getpid());
    assert_non_null(strstr(name, pid));
    assert_non_null(strstr(name, ".M"));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* tmp/ is empty again, cur/ exists */
    snprintf(dir, sizeof dir, "%s/mail/example.net/bob/Maildir/tmp", f->root);
    assert_int_equal(count_entries(dir, NULL, 0), 0);
    snprintf(dir, sizeof dir, "%s/mail/example.net/bob/Maildir/cur", f->root);
    assert_int_equal(count_entries(dir, NULL, 0), 0);
    assert_non_null(strstr(res.text, name));
}

static void test_deliver_crlf_across_chunks(void **state)
{
    struct fx *f = *state;
    /* CRLFs at every offset around the reader's 8192-octet chunks, and a final lone CR */
    size_t n = 20000;
    char *msg = malloc(n);
    char *want = malloc(n + 200);
    assert_non_null(msg);
    assert_non_null(want);
    size_t w =
        (size_t)snprintf(want, n + 200, "Return-Path: <>\nDelivered-To: carol@example.net\n");
    for (size_t i = 0; i < n; i++) {
        bool crlf = (i % 7 == 5) || (i >= 8185 && i <= 8200 && i % 2 == 1);
        if (crlf && i + 1 < n - 1) {
            msg[i] = '\r';
            msg[i + 1] = '\n';
            want[w++] = '\n';
            i++;
        } else {
            msg[i] = (char)('a' + i % 26);
            want[w++] = msg[i];
        }
    }
    msg[n - 1] = '\r';
    want[w - 1] = '\r';
    f->env.sender[0] = '\0'; /* the null sender: Return-Path: <> */
    struct delivery_rcpt_result res;
    deliver_bytes(f, 1, msg, n, &res);
    assert_int_equal(res.outcome, DELIVERY_OK);
    char dir[DIR_MAX + 64], name[256], path[DIR_MAX + 400];
    snprintf(dir, sizeof dir, "%s/mail/example.net/carol/Maildir/new", f->root);
    assert_int_equal(count_entries(dir, name, sizeof name), 1);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len;
    char *got = read_all(path, &len);
    assert_int_equal(len, w);
    assert_memory_equal(got, want, w);
    char s[32];
    snprintf(s, sizeof s, ",S=%zu", w);
    assert_non_null(strstr(name, s));
    free(got);
    free(msg);
    free(want);
}

static void test_deliver_dirs_0700(void **state)
{
    struct fx *f = *state;
    mode_t old = umask(0);
    struct delivery_rcpt_result res;
    deliver_bytes(f, 0, "a\r\n", 3, &res);
    umask(old);
    assert_int_equal(res.outcome, DELIVERY_OK);
    static const char *const dirs[] = {"mail",
                                       "mail/example.net",
                                       "mail/example.net/bob",
                                       "mail/example.net/bob/Maildir",
                                       "mail/example.net/bob/Maildir/tmp",
                                       "mail/example.net/bob/Maildir/new",
                                       "mail/example.net/bob/Maildir/cur"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[DIR_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", f->root, dirs[i]);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        if ((st.st_mode & 07777) != 0700)
            fail_msg("%s has mode %o", dirs[i], st.st_mode & 07777);
    }
}

static void test_deliver_unique_names(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 1000; i++) {
        struct delivery_rcpt_result res;
        deliver_bytes(f, 0, "x\r\n", 3, &res);
        if (res.outcome != DELIVERY_OK)
            fail_msg("delivery %d: %s", i, res.text);
    }
    char dir[DIR_MAX + 64];
    snprintf(dir, sizeof dir, "%s/mail/example.net/bob/Maildir/new", f->root);
    assert_int_equal(count_entries(dir, NULL, 0), 1000);
    snprintf(dir, sizeof dir, "%s/mail/example.net/bob/Maildir/tmp", f->root);
    assert_int_equal(count_entries(dir, NULL, 0), 0);
}

static void test_deliver_hostile_refused(void **state)
{
    struct fx *f = *state;
    static char *const bad[] = {"../x@example.net", ".hidden@example.net", "a/b@example.net",
                                "ctl\x1b@example.net", "bob@../etc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f->rcpts[0] = bad[i];
        struct delivery_rcpt_result res;
        deliver_bytes(f, 0, "x\r\n", 3, &res);
        assert_int_equal(res.outcome, DELIVERY_PERM);
        assert_string_equal(res.enhanced, "5.1.3");
        assert_string_equal(res.stage, "maildir");
        assert_int_equal(res.code, 0);
    }
    /* nothing was made */
    char path[DIR_MAX + 16];
    snprintf(path, sizeof path, "%s/mail", f->root);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_deliver_bad_template_temp(void **state)
{
    struct fx *f = *state;
    snprintf(f->template, sizeof f->template, "%s/%%x/%%u", f->root);
    struct delivery_rcpt_result res;
    deliver_bytes(f, 0, "x\r\n", 3, &res);
    assert_int_equal(res.outcome, DELIVERY_TEMP);
    assert_string_equal(res.enhanced, "4.3.5");
}

static void test_deliver_unusable_path(void **state)
{
    struct fx *f = *state;
    /* a regular file where a directory must be: even root cannot go on */
    char file[DIR_MAX + 16];
    snprintf(file, sizeof file, "%s/mail", f->root);
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    struct delivery_rcpt_result res;
    deliver_bytes(f, 0, "x\r\n", 3, &res);
    assert_int_equal(res.outcome, DELIVERY_TEMP);
    assert_string_equal(res.enhanced, "4.3.0");
    assert_non_null(strstr(res.text, "Not a directory"));
    assert_non_null(strstr(res.text, file));
}

/* A FILE* whose reads check that new/ stays empty and tmp/ holds the file being written;
 * fail_at > 0: the read that would pass that offset fails with EIO. */
struct watch {
    const char *data;
    size_t len, pos, fail_at;
    char new_dir[DIR_MAX + 64], tmp_dir[DIR_MAX + 64];
    int reads, max_new, max_tmp;
};

static ssize_t watch_read(void *cookie, char *buf, size_t size)
{
    struct watch *w = cookie;
    w->reads++;
    int n_new = count_entries(w->new_dir, NULL, 0);
    int n_tmp = count_entries(w->tmp_dir, NULL, 0);
    w->max_new = n_new > w->max_new ? n_new : w->max_new;
    w->max_tmp = n_tmp > w->max_tmp ? n_tmp : w->max_tmp;
    if (size > 1000)
        size = 1000; /* many small reads */
    if (w->fail_at > 0 && w->pos + size > w->fail_at) {
        errno = EIO;
        return -1;
    }
    size_t n = w->len - w->pos < size ? w->len - w->pos : size;
    memcpy(buf, w->data + w->pos, n);
    w->pos += n;
    return (ssize_t)n;
}

static FILE *watch_open(struct watch *w, struct fx *f, const char *data, size_t len)
{
    memset(w, 0, sizeof *w);
    w->data = data;
    w->len = len;
    snprintf(w->new_dir, sizeof w->new_dir, "%s/mail/example.net/bob/Maildir/new", f->root);
    snprintf(w->tmp_dir, sizeof w->tmp_dir, "%s/mail/example.net/bob/Maildir/tmp", f->root);
    cookie_io_functions_t io = {.read = watch_read};
    FILE *fp = fopencookie(w, "r", io);
    assert_non_null(fp);
    setvbuf(fp, NULL, _IONBF, 0);
    return fp;
}

static char *big_message(size_t n)
{
    char *m = malloc(n);
    assert_non_null(m);
    for (size_t i = 0; i < n; i++)
        m[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : 'm';
    return m;
}

static void test_not_visible_until_complete(void **state)
{
    struct fx *f = *state;
    size_t n = 50000;
    char *m = big_message(n);
    struct watch w;
    FILE *fp = watch_open(&w, f, m, n);
    f->env.size = n;
    struct delivery_rcpt_result res;
    maildir_deliver(f->template, &f->env, 0, fp, "mx", &res);
    fclose(fp);
    assert_int_equal(res.outcome, DELIVERY_OK);
    assert_true(w.reads > 10);
    assert_int_equal(w.max_new, 0); /* never anything in new/ while writing */
    assert_int_equal(w.max_tmp, 1); /* the file grew in tmp/ */
    assert_int_equal(count_entries(w.new_dir, NULL, 0), 1);
    assert_int_equal(count_entries(w.tmp_dir, NULL, 0), 0);
    free(m);
}

static void test_read_error_leaves_nothing(void **state)
{
    struct fx *f = *state;
    size_t n = 50000;
    char *m = big_message(n);
    struct watch w;
    FILE *fp = watch_open(&w, f, m, n);
    w.fail_at = 30000;
    f->env.size = n;
    struct delivery_rcpt_result res;
    maildir_deliver(f->template, &f->env, 0, fp, "mx", &res);
    fclose(fp);
    assert_int_equal(res.outcome, DELIVERY_TEMP);
    assert_string_equal(res.enhanced, "4.3.0");
    assert_string_equal(res.stage, "maildir");
    assert_non_null(strstr(res.text, "Input/output error"));
    assert_int_equal(count_entries(w.new_dir, NULL, 0), 0);
    assert_int_equal(count_entries(w.tmp_dir, NULL, 0), 0);
    free(m);
}

static void test_short_queue_file(void **state)
{
    struct fx *f = *state;
    FILE *fp = file_of("abc\r\n", 5);
    f->env.size = 500; /* the envelope promises more than the file holds */
    struct delivery_rcpt_result res;
    maildir_deliver(f->template, &f->env, 0, fp, "mx", &res);
    fclose(fp);
    assert_int_equal(res.outcome, DELIVERY_TEMP);
    assert_string_equal(res.enhanced, "4.3.0");
    char dir[DIR_MAX + 64];
    snprintf(dir, sizeof dir, "%s/mail/example.net/bob/Maildir/new", f->root);
    assert_int_equal(count_entries(dir, NULL, 0), 0);
    snprintf(dir, sizeof dir, "%s/mail/example.net/bob/Maildir/tmp", f->root);
    assert_int_equal(count_entries(dir, NULL, 0), 0);
}

static void test_host_escaped_in_name(void **state)
{
    struct fx *f = *state;
    f->env.size = 3;
    FILE *fp = file_of("x\r\n", 3);
    struct delivery_rcpt_result res;
    maildir_deliver(f->template, &f->env, 0, fp, "odd/host:name", &res);
    fclose(fp);
    assert_int_equal(res.outcome, DELIVERY_OK);
    char dir[DIR_MAX + 64], name[256];
    snprintf(dir, sizeof dir, "%s/mail/example.net/bob/Maildir/new", f->root);
    assert_int_equal(count_entries(dir, name, sizeof name), 1);
    assert_non_null(strstr(name, ".odd\\057host\\072name,S="));
}

static void test_bad_index(void **state)
{
    struct fx *f = *state;
    struct delivery_rcpt_result res;
    deliver_bytes(f, 2, "x\r\n", 3, &res);
    assert_int_equal(res.outcome, DELIVERY_TEMP);
    assert_string_equal(res.stage, "maildir");
}

static void test_disk_full(void **state)
{
    struct fx *f = *state;
    if (geteuid() != 0)
        skip();
    char mnt[DIR_MAX + 16];
    snprintf(mnt, sizeof mnt, "%s/full", f->root);
    assert_int_equal(mkdir(mnt, 0700), 0);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") == -1) {
        fprintf(stderr, "# cannot mount a tmpfs (%s): skipped\n", strerror(errno));
        skip();
    }
    snprintf(f->template, sizeof f->template, "%s/%%u", mnt);
    size_t n = 200000;
    char *m = big_message(n);
    struct delivery_rcpt_result res;
    deliver_bytes(f, 0, m, n, &res);
    char dir[DIR_MAX + 64];
    snprintf(dir, sizeof dir, "%s/bob/new", mnt);
    int in_new = count_entries(dir, NULL, 0);
    snprintf(dir, sizeof dir, "%s/bob/tmp", mnt);
    int in_tmp = count_entries(dir, NULL, 0);
    /* a small one still fits afterwards: the failed one left no space taken */
    struct delivery_rcpt_result small;
    deliver_bytes(f, 0, "x\r\n", 3, &small);
    if (umount(mnt) == -1)
        fprintf(stderr, "# umount %s: %s\n", mnt, strerror(errno));
    free(m);
    assert_int_equal(res.outcome, DELIVERY_TEMP);
    assert_string_equal(res.enhanced, "4.3.1");
    assert_string_equal(res.stage, "maildir");
    assert_non_null(strstr(res.text, "No space left on device"));
    assert_int_equal(in_new, 0);
    assert_int_equal(in_tmp, 0);
    assert_int_equal(small.outcome, DELIVERY_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_expansion),
        cmocka_unit_test(test_path_bad_template),
        cmocka_unit_test(test_path_hostile_pieces),
        cmocka_unit_test(test_path_lengths),
        cmocka_unit_test_setup_teardown(test_deliver_exact_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deliver_crlf_across_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deliver_dirs_0700, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deliver_unique_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deliver_hostile_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deliver_bad_template_temp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deliver_unusable_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_visible_until_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_error_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_queue_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_escaped_in_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
