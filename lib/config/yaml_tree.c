/* yaml_tree.c: libyaml events -> pg_ynode_t tree (see yaml_tree.h).
 * Called off the event loop by the config builder. */
#include "config/yaml_tree.h"

#include <string.h>

#include <yaml.h>

#include "base/str.h"

typedef struct frame {
    pg_ynode_t *node;
    pg_yentry_t *cur;   /* MAP: the entry whose value is being read */
    pg_yentry_t *etail; /* MAP: last linked entry */
    pg_ynode_t *itail;  /* SEQ: last item */
    bool want_key;      /* MAP: the next scalar is a key */
} frame_t;

typedef struct builder {
    pg_arena_t *a;
    pg_cfg_diag_t *d;
    const char *origin;
    frame_t stack[PG_YTREE_MAX_DEPTH];
    size_t depth;
    pg_ynode_t *root;
    int docs;
} builder_t;

const char *pg__ynode_kind_name(const pg_ynode_t *n)
{
    if (n == NULL)
        return "nothing";
    switch (n->kind) {
    case PG_YNODE_MAP: return "a mapping";
    case PG_YNODE_SEQ: return "a list";
    default: return n->null ? "null" : "a string";
    }
}

/* The key path of the node being built, plus key when key.p != NULL. */
static void builder_path(const builder_t *b, pg_cfg_path_t *p, pg_str_t key)
{
    pg__cfg_path_init(p);
    for (size_t i = 0; i < b->depth; i++) {
        const frame_t *f = &b->stack[i];
        bool top = i + 1 == b->depth;
        if (f->node->kind == PG_YNODE_SEQ) {
            if (!top)
                pg__cfg_path_index(p, f->node->n - 1);
        } else if (!top && f->cur != NULL) {
            pg__cfg_path_key(p, f->cur->key);
        }
    }
    if (key.p != NULL)
        pg__cfg_path_key(p, key);
}

static pg_ynode_t *node_new(builder_t *b, pg_ynode_kind_t kind,
                            const yaml_mark_t *m)
{
    pg_ynode_t *n = pg_arena_calloc(b->a, 1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->kind = kind;
    n->line = (uint32_t)m->line + 1;
    n->col = (uint32_t)m->column + 1;
    return n;
}

/* Hangs a finished or just-started node under the current container. */
static void attach(builder_t *b, pg_ynode_t *n)
{
    if (b->depth == 0) {
        b->root = n;
        return;
    }
    frame_t *f = &b->stack[b->depth - 1];
    if (f->node->kind == PG_YNODE_SEQ) {
        if (f->itail == NULL)
            f->node->items = n;
        else
            f->itail->next = n;
        f->itail = n;
        f->node->n++;
    } else {
        f->cur->value = n;
        f->want_key = true;
    }
}

static bool is_null_scalar(const yaml_event_t *ev)
{
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    pg_str_t v = pg_str((const char *)ev->data.scalar.value,
                        ev->data.scalar.length);
    return v.n == 0 || pg_str_eqc(v, "~") || pg_str_eqc(v, "null") ||
           pg_str_eqc(v, "Null") || pg_str_eqc(v, "NULL");
}

/* A scalar in key position: a new entry, unless the mapping has the key
 * already (then the value is read into an unlinked entry and dropped). */
static int on_key(builder_t *b, const yaml_event_t *ev)
{
    frame_t *f = &b->stack[b->depth - 1];
    pg_str_t key = pg_arena_strdup(
        b->a, pg_str((const char *)ev->data.scalar.value,
                     ev->data.scalar.length));
    pg_yentry_t *e = pg_arena_calloc(b->a, 1, sizeof(*e));
    if (key.p == NULL || e == NULL)
        return PG_ENOMEM;
    e->key = key;
    e->line = (uint32_t)ev->start_mark.line + 1;
    e->col = (uint32_t)ev->start_mark.column + 1;
    f->cur = e;
    f->want_key = false;
    for (pg_yentry_t *o = f->node->entries; o != NULL; o = o->next) {
        if (pg_str_eq(o->key, key)) {
            pg_cfg_path_t p;
            builder_path(b, &p, key);
            pg__cfg_report(b->d, p.s,
                           "duplicate key (line %u; first defined at line %u)",
                           e->line, o->line);
            return PG_OK;
        }
    }
    if (f->etail == NULL)
        f->node->entries = e;
    else
        f->etail->next = e;
    f->etail = e;
    f->node->n++;
    return PG_OK;
}

static bool key_expected(const builder_t *b)
{
    return b->depth > 0 && b->stack[b->depth - 1].node->kind == PG_YNODE_MAP &&
           b->stack[b->depth - 1].want_key;
}

static int fatal(builder_t *b, const yaml_mark_t *m, const char *msg)
{
    pg__cfg_report(b->d, "", "%s:%zu:%zu: %s", b->origin, m->line + 1,
                   m->column + 1, msg);
    return PG_ECONFIG;
}

static int on_scalar(builder_t *b, const yaml_event_t *ev)
{
    if (key_expected(b))
        return on_key(b, ev);
    pg_ynode_t *n = node_new(b, PG_YNODE_SCALAR, &ev->start_mark);
    if (n == NULL)
        return PG_ENOMEM;
    n->null = is_null_scalar(ev);
    n->scalar = pg_arena_strdup(
        b->a, pg_str((const char *)ev->data.scalar.value,
                     ev->data.scalar.length));
    if (n->scalar.p == NULL)
        return PG_ENOMEM;
    attach(b, n);
    return PG_OK;
}

static int on_alias(builder_t *b, const yaml_event_t *ev)
{
    if (key_expected(b))
        return fatal(b, &ev->start_mark, "aliases cannot be mapping keys");
    /* Aliases would let a small file expand into a huge tree ("billion
     * laughs") and nothing in the config needs them. */
    pg_cfg_path_t p;
    builder_path(b, &p, PG_STR_NULL);
    if (b->depth > 0 && b->stack[b->depth - 1].node->kind == PG_YNODE_SEQ)
        pg__cfg_path_index(&p, b->stack[b->depth - 1].node->n);
    else if (b->depth > 0)
        pg__cfg_path_key(&p, b->stack[b->depth - 1].cur->key);
    pg__cfg_report(b->d, p.s,
                   "YAML aliases (*name) are not supported (line %zu)",
                   ev->start_mark.line + 1);
    pg_ynode_t *n = node_new(b, PG_YNODE_SCALAR, &ev->start_mark);
    if (n == NULL)
        return PG_ENOMEM;
    n->null = true;
    n->scalar = PG_STR("");
    attach(b, n);
    return PG_OK;
}

static int on_start(builder_t *b, const yaml_event_t *ev, pg_ynode_kind_t k)
{
    if (key_expected(b))
        return fatal(b, &ev->start_mark,
                     "mapping keys must be plain strings, not mappings or "
                     "lists");
    if (b->depth == PG_YTREE_MAX_DEPTH)
        return fatal(b, &ev->start_mark, "nesting is too deep");
    pg_ynode_t *n = node_new(b, k, &ev->start_mark);
    if (n == NULL)
        return PG_ENOMEM;
    attach(b, n);
    frame_t *f = &b->stack[b->depth++];
    memset(f, 0, sizeof(*f));
    f->node = n;
    f->want_key = true;
    return PG_OK;
}

static int on_event(builder_t *b, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->docs > 1)
            return fatal(b, &ev->start_mark,
                         "only one YAML document is allowed");
        return PG_OK;
    case YAML_SCALAR_EVENT: return on_scalar(b, ev);
    case YAML_ALIAS_EVENT: return on_alias(b, ev);
    case YAML_MAPPING_START_EVENT: return on_start(b, ev, PG_YNODE_MAP);
    case YAML_SEQUENCE_START_EVENT: return on_start(b, ev, PG_YNODE_SEQ);
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        b->depth--;
        return PG_OK;
    default: return PG_OK;
    }
}

static int syntax_error(builder_t *b, const yaml_parser_t *yp)
{
    if (yp->error == YAML_MEMORY_ERROR)
        return PG_ENOMEM;
    const yaml_mark_t *m = &yp->problem_mark;
    const char *problem = yp->problem ? yp->problem : "invalid YAML";
    if (yp->context != NULL)
        pg__cfg_report(b->d, "", "%s:%zu:%zu: %s (%s at line %zu)", b->origin,
                       m->line + 1, m->column + 1, problem, yp->context,
                       yp->context_mark.line + 1);
    else
        pg__cfg_report(b->d, "", "%s:%zu:%zu: %s", b->origin, m->line + 1,
                       m->column + 1, problem);
    return PG_ECONFIG;
}

int pg__ytree_parse(pg_arena_t *a, const char *yaml, size_t len,
                    const char *origin, pg_cfg_diag_t *d, pg_ynode_t **root)
{
    builder_t b = {.a = a, .d = d, .origin = origin ? origin : "<memory>"};
    yaml_parser_t yp;
    int rc = PG_OK;
    *root = NULL;
    if (!yaml_parser_initialize(&yp))
        return PG_ENOMEM;
    yaml_parser_set_input_string(&yp, (const unsigned char *)yaml, len);
    for (bool done = false; !done && rc == PG_OK;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&yp, &ev)) {
            rc = syntax_error(&b, &yp);
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        rc = on_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&yp);
    if (rc == PG_OK)
        *root = b.root;
    return rc;
}
