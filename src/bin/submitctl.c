/* submitctl.c: the administration tool of submitd (SPEC section 8). Owns the global options
 * (-d DIR), the table of command groups, `help`, and the one place where a command line is
 * matched to a command and checked (positional count, --options, --json) before it runs. The
 * commands themselves live in src/ctl/, one file per group. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl/ctl.h"
#include "directory.h"

extern const struct ctl_command ctl_lockout_commands[]; /* ctl_lockout.c (not in ctl.h) */

static const struct ctl_command *const groups[] = {
    ctl_tenant_commands,       ctl_mailbox_commands, ctl_grant_commands, ctl_alias_commands,
    ctl_app_password_commands, ctl_policy_commands,  ctl_rule_commands,  ctl_token_commands,
    ctl_explain_commands,      ctl_log_commands,     ctl_queue_commands, ctl_lockout_commands,
};
#define N_GROUPS (sizeof groups / sizeof groups[0])

static void print_usage_line(FILE *f, const struct ctl_command *cmd)
{
    char line[160];
    snprintf(line, sizeof line, "%s%s%s%s%s%s", cmd->group, cmd->name ? " " : "",
             cmd->name ? cmd->name : "", cmd->args[0] ? " " : "", cmd->args,
             (cmd->flags & CTL_JSON) ? " [--json]" : "");
    fprintf(f, "  %s\n", line);
    fprintf(f, "      %s\n", cmd->help);
}

static void print_help(FILE *f, const char *only_group)
{
    fputs("usage: submitctl [-d DIR] COMMAND ...   (DIR defaults to ./var)\n\ncommands:\n", f);
    for (size_t g = 0; g < N_GROUPS; g++)
        for (const struct ctl_command *cmd = groups[g]; cmd->group != NULL; cmd++)
            if (only_group == NULL || strcmp(only_group, cmd->group) == 0)
                print_usage_line(f, cmd);
    fputs("\nexit status: 0 success, 1 the answer is no (denied, not found, refused), 2 bad "
          "usage\n",
          f);
}

static const struct ctl_command *find_command(const char *group, const char *name,
                                              bool *group_known)
{
    *group_known = false;
    for (size_t g = 0; g < N_GROUPS; g++)
        for (const struct ctl_command *cmd = groups[g]; cmd->group != NULL; cmd++) {
            if (strcmp(cmd->group, group) != 0)
                continue;
            *group_known = true;
            if (cmd->name == NULL || (name != NULL && strcmp(cmd->name, name) == 0))
                return cmd;
        }
    return NULL;
}

static int usage_of(const struct ctl *c, const char *why)
{
    const struct ctl_command *cmd = c->cmd;
    return ctl_usage(c, "%s; usage: submitctl [-d DIR] %s%s%s%s%s%s", why, cmd->group,
                     cmd->name ? " " : "", cmd->name ? cmd->name : "", cmd->args[0] ? " " : "",
                     cmd->args, (cmd->flags & CTL_JSON) ? " [--json]" : "");
}

/* Splits the arguments after the command into positionals and the command's --options. */
static int parse_args(struct ctl *c, int argc, char **argv, char **pos, int *npos)
{
    const struct ctl_command *cmd = c->cmd;
    bool options = true;
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (options && strcmp(a, "--") == 0) {
            options = false; /* the rest are positional, even if they start with "--" */
            continue;
        }
        if (!options || strncmp(a, "--", 2) != 0) {
            if (*npos >= CTL_POS_MAX || *npos >= cmd->max_pos)
                return usage_of(c, "too many arguments");
            pos[(*npos)++] = argv[i];
            continue;
        }
        if (strcmp(a, "--json") == 0 && (cmd->flags & CTL_JSON)) {
            c->json = true;
            continue;
        }
        int k = 0;
        while (cmd->opts != NULL && cmd->opts[k].name != NULL && strcmp(cmd->opts[k].name, a))
            k++;
        if (cmd->opts == NULL || cmd->opts[k].name == NULL) {
            char why[128];
            snprintf(why, sizeof why, "unknown option %.80s", a);
            return usage_of(c, why);
        }
        if (cmd->opts[k].has_value) {
            if (i + 1 >= argc) {
                char why[128];
                snprintf(why, sizeof why, "%s needs a value", a);
                return usage_of(c, why);
            }
            c->opt[k] = argv[++i];
        } else {
            c->opt[k] = "";
        }
    }
    if (*npos < cmd->min_pos)
        return usage_of(c, "missing arguments");
    return 0;
}

int main(int argc, char **argv)
{
    struct ctl c;
    memset(&c, 0, sizeof c);
    c.datadir = CTL_DEFAULT_DATADIR;
    umask(077); /* the directory, keys and logs it writes are private */
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-d") == 0 && i + 1 < argc && argv[i + 1][0] != '\0') {
            c.datadir = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            print_help(stdout, NULL);
            return CTL_EXIT_OK;
        } else {
            fprintf(stderr, "submitctl: bad option %s (see submitctl help)\n", argv[i]);
            return CTL_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        print_help(stderr, NULL);
        return CTL_EXIT_USAGE;
    }
    if (strcmp(argv[i], "help") == 0) {
        print_help(stdout, i + 1 < argc ? argv[i + 1] : NULL);
        return CTL_EXIT_OK;
    }
    bool group_known;
    const char *sub = i + 1 < argc ? argv[i + 1] : NULL;
    c.cmd = find_command(argv[i], sub, &group_known);
    if (c.cmd == NULL) {
        if (!group_known)
            fprintf(stderr, "submitctl: unknown command %s (see submitctl help)\n", argv[i]);
        else
            fprintf(stderr, "submitctl: %s: %s%s (see submitctl help %s)\n", argv[i],
                    sub ? "unknown subcommand " : "missing subcommand", sub ? sub : "", argv[i]);
        return CTL_EXIT_USAGE;
    }
    int first = i + (c.cmd->name ? 2 : 1);
    char *pos[CTL_POS_MAX];
    int npos = 0;
    int rc = parse_args(&c, argc - first, argv + first, pos, &npos);
    if (rc == 0)
        rc = c.cmd->run(&c, pos, npos);
    if (c.dir != NULL)
        directory_close(c.dir);
    if (fflush(stdout) != 0) {
        perror("submitctl: standard output");
        return CTL_EXIT_NO;
    }
    return rc;
}
