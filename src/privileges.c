/* privileges.c: dropping root after binding, and the permission checks on the data directory
 * and private keys. */
#include "privileges.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int privileges_drop(const char *user, const char *datadir, char *err, size_t errlen)
{
    if (geteuid() != 0)
        return 0;
    if (!user || !*user) {
        snprintf(err, errlen,
                 "running as root: set `user = NAME` in submitd.conf to run as an "
                 "unprivileged user after binding the listeners");
        return 1;
    }
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        snprintf(err, errlen, "user '%s' (submitd.conf) does not exist", user);
        return -1;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, errlen, "user '%s' is root: name an unprivileged user", user);
        return -1;
    }
    struct stat st;
    if (stat(datadir, &st) != 0) {
        snprintf(err, errlen, "cannot stat %s: %s", datadir, strerror(errno));
        return -1;
    }
    if (st.st_uid != pw->pw_uid) {
        snprintf(err, errlen, "%s belongs to uid %ld, not to %s: chown -R %s %s", datadir,
                 (long)st.st_uid, user, user, datadir);
        return -1;
    }
    if (initgroups(user, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0) {
        snprintf(err, errlen, "cannot become %s: %s", user, strerror(errno));
        return -1;
    }
    if (setuid(0) == 0 || geteuid() == 0) {
        snprintf(err, errlen, "could regain root after becoming %s", user);
        return -1;
    }
    return 0;
}

int privileges_check_dir(const char *datadir, char *err, size_t errlen)
{
    struct stat st;
    if (stat(datadir, &st) != 0) {
        snprintf(err, errlen, "cannot stat %s: %s", datadir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s is not a directory", datadir);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen, "%s belongs to uid %ld, not to the user submitd runs as (%ld)",
                 datadir, (long)st.st_uid, (long)geteuid());
        return -1;
    }
    if (st.st_mode & 077) {
        snprintf(err, errlen,
                 "%s is mode %04o: it holds keys, passwords and mail, and must give nothing to "
                 "group or others (chmod 700 %s)",
                 datadir, (unsigned)(st.st_mode & 07777), datadir);
        return -1;
    }
    return 0;
}

int privileges_check_key(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno == ENOENT ? 0 : (snprintf(err, errlen, "cannot stat %s: %s", path,
                                               strerror(errno)),
                                      -1);
    if (st.st_uid != geteuid() || (st.st_mode & 077)) {
        snprintf(err, errlen,
                 "private key %s is mode %04o, uid %ld: it must belong to the user submitd runs "
                 "as and be 0600 (chmod 600 %s)",
                 path, (unsigned)(st.st_mode & 07777), (long)st.st_uid, path);
        return -1;
    }
    return 0;
}
