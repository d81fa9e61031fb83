/* polyglot-gw: the gateway as a program. Parses flags, then only calls the
 * public API: pg_gateway_new, option setters, pg_gateway_start, waits for
 * SIGINT/SIGTERM, pg_gateway_shutdown (drain), pg_gateway_free. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "polyglot/polyglot.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: polyglot-gw [--config FILE] [--port N] [--check]\n"
            "       polyglot-gw hash-key KEY\n"
            "       polyglot-gw --version | --help\n"
            "\n"
            "  --config FILE   YAML configuration (default ./config.yaml)\n"
            "  --port N        listen on port N instead of server.port\n"
            "  --check         validate the configuration, print every problem,\n"
            "                  exit 0 when valid and 1 otherwise\n"
            "  --version       print the version\n"
            "  hash-key KEY    print the SHA-256 hex of KEY, the form\n"
            "                  tenants[].api_keys[].key_hash takes\n"
            "\n"
            "SIGINT or SIGTERM stops accepting, lets in-flight requests finish\n"
            "(server.shutdown_timeout) and exits 0.\n");
}

static void print_problem(void *ud, const char *path, const char *message)
{
    int *count = ud;
    (*count)++;
    if (path[0] != '\0')
        fprintf(stderr, "config error: %s: %s\n", path, message);
    else
        fprintf(stderr, "config error: %s\n", message);
}

static int parse_port(const char *s, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

static int hash_key(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: polyglot-gw hash-key KEY\n");
        return 2;
    }
    char hex[65];
    pg_hash_key(argv[2], strlen(argv[2]), hex);
    printf("%s\n", hex);
    return 0;
}

int main(int argc, char **argv)
{
    const char *config = "./config.yaml";
    int port = -1;
    int check = 0;

    if (argc >= 2 && strcmp(argv[1], "hash-key") == 0)
        return hash_key(argc, argv);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("polyglot-gw %s\n", pg_version());
            return 0;
        } else if (strcmp(a, "--check") == 0) {
            check = 1;
        } else if (strcmp(a, "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            config = a + 9;
        } else if (strcmp(a, "--port") == 0 && i + 1 < argc) {
            if (parse_port(argv[++i], &port) != 0) {
                fprintf(stderr, "polyglot-gw: --port takes 0..65535\n");
                return 2;
            }
        } else {
            fprintf(stderr, "polyglot-gw: unknown argument \"%s\"\n\n", a);
            usage(stderr);
            return 2;
        }
    }

    pg_gateway_t *gw = pg_gateway_new();
    if (gw == NULL) {
        fprintf(stderr, "polyglot-gw: out of memory\n");
        return 1;
    }
    int rc = pg_gateway_set_config_file(gw, config);
    if (rc == PG_OK && port >= 0)
        rc = pg_gateway_set_listen(gw, NULL, port);
    if (rc != PG_OK) {
        fprintf(stderr, "polyglot-gw: %s\n", pg_gateway_last_error(gw));
        pg_gateway_free(gw);
        return 1;
    }

    /* Validate first so that every problem is printed, with its path,
     * before anything binds the port. */
    int problems = 0;
    rc = pg_gateway_check_config(gw, print_problem, &problems);
    if (rc != PG_OK || check) {
        if (rc == PG_OK)
            printf("%s: configuration is valid\n", config);
        else if (problems == 0)
            fprintf(stderr, "polyglot-gw: %s\n", pg_gateway_last_error(gw));
        else
            fprintf(stderr, "%s: %d problem%s\n", config, problems,
                    problems == 1 ? "" : "s");
        pg_gateway_free(gw);
        return rc == PG_OK ? 0 : 1;
    }

    /* Block the stop signals before any worker thread exists, so the
     * threads inherit the mask and only sigwait below receives them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    rc = pg_gateway_start(gw);
    if (rc != PG_OK) {
        fprintf(stderr, "polyglot-gw: %s\n", pg_gateway_last_error(gw));
        pg_gateway_free(gw);
        return 1;
    }
    int sig = 0;
    sigwait(&stop, &sig);
    rc = pg_gateway_shutdown(gw, -1);
    if (rc != PG_OK)
        fprintf(stderr, "polyglot-gw: %s\n", pg_gateway_last_error(gw));
    pg_gateway_free(gw);
    return rc == PG_OK ? 0 : 1;
}
