/*
 * strata-viewd: the low-level FUSE server of one view (docs/view-core.md).
 *
 * One process serves one mount. The rule table (rules.c) says, for a view path, which places
 * may hold it (resolve.c); nodes.c keeps the kernel's node ids; the ops_*.c files answer the
 * kernel; control.c speaks the line protocol to the agent; inval.c swaps tables and invalidates
 * exactly what changed.
 */
#ifndef STRATA_VIEWD_H
#define STRATA_VIEWD_H

#include <fuse_lowlevel.h>

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#define MAX_LAYERS 128
/* A view path is '/' + a path the kernel may hand a file system (up to PATH_MAX - 1 bytes). */
#define VPATH_MAX (PATH_MAX + 16)
#define MAX_SOURCES (2 * MAX_LAYERS + 1)

/* ---- util.c ------------------------------------------------------------ */

/* Percent-encoding of the table and the protocol: bytes outside '!'..'~' and '%' as %XX. */
size_t pct_encode(const char *in, size_t len, char *out, size_t cap);
char *pct_encode_dup(const char *in, size_t len);
/* Decodes in place-safe into out (cap >= len + 1); returns the length or -1 when malformed. */
ssize_t pct_decode(const char *in, size_t len, char *out);

/* '/' or '/a/b': no empty, '.' or '..' segments, no trailing '/', no NUL. */
int is_view_path(const char *p, size_t len);
/* '' or 'a/b' with the same rules. */
int is_rel_path(const char *p, size_t len);
/* p equals prefix or lies below it (view paths). */
int path_under(const char *p, size_t plen, const char *prefix, size_t prelen);
/* Same for layer-relative paths ('' is the root). */
int rel_under(const char *r, size_t rlen, const char *prefix, size_t prelen);

/* A set of byte strings (whiteouts, opaque folders). Not thread-safe: callers lock. */
struct strset;
struct strset *strset_new(void);
void strset_free(struct strset *s);
int strset_add(struct strset *s, const char *p, size_t len);    /* 1 added, 0 present, -1 ENOMEM */
int strset_del(struct strset *s, const char *p, size_t len);    /* 1 removed, 0 absent */
int strset_has(const struct strset *s, const char *p, size_t len);
size_t strset_count(const struct strset *s);
/* Calls fn for each member; fn may not modify the set. */
void strset_each(const struct strset *s, void (*fn)(const char *p, size_t len, void *arg), void *arg);

/* ---- marks.c: whiteouts and opaque folders of one layer's writable sublayer ---- */

struct marks;
/* The registry entry for a layer, (re)loaded when its writable folder is a new one. */
struct marks *marks_attach(const char *layer, const char *writable_dir, const char *meta_dir);
/* rel or an ancestor of it was deleted through the view. */
int marks_whiteout_covers(struct marks *m, const char *rel, size_t len);
/* A strict ancestor of rel is opaque. */
int marks_opaque_above(struct marks *m, const char *rel, size_t len);
int marks_is_whiteout(struct marks *m, const char *rel, size_t len);
int marks_is_opaque(struct marks *m, const char *rel, size_t len);
int marks_add_whiteout(struct marks *m, const char *rel, size_t len);
int marks_del_whiteout(struct marks *m, const char *rel, size_t len); /* 1 when there was one */
int marks_set_opaque(struct marks *m, const char *rel, size_t len);
void marks_drop_below(struct marks *m, const char *rel, size_t len);
/* Legacy marker names of the first view (.wh.NAME, .wh..wh..opq): hidden from listings. */
int marks_hidden_name(const char *name);

/* ---- rules.c: the immutable rule table --------------------------------- */

struct rmap {
  char *orig; size_t olen;   /* view path */
  char *dest; size_t dlen;   /* layer-relative, '' for the root */
};

struct rlayer {
  char *name, *files, *writable, *meta;
  int files_fd, writable_fd;  /* O_PATH folders, -1 when missing */
  struct stat files_st, writable_st; /* which folders: a layer rebuilt or reset in place is a change */
  struct marks *marks;
  struct rmap *maps; int nmaps;
  char **excl; size_t *excl_len; int nexcl;
  char **del; size_t *del_len; int ndel;
};

struct table {
  int refs;
  uint64_t generation;
  struct rlayer *layers; int nlayers;
};

/* Parses a table; NULL and a message in err when malformed. */
struct table *table_parse(const char *text, size_t len, char *err, size_t cap);
void table_free(struct table *t);
/* The current table with a reference; table_put drops it. */
struct table *table_get(void);
void table_put(struct table *t);
/* Installs t (takes the caller's reference); returns the old table with one reference. */
struct table *table_install(struct table *t);
/* Waits until only the caller holds old (no request still resolving with it). */
void table_drain(struct table *old);

/* ---- resolve.c: Resolver.resolve and sourcesFor in C -------------------- */

struct branch { short layer, map; };

struct resolution {
  int hidden, base, nb;
  struct branch b[MAX_LAYERS];
};

enum { SRC_WRITABLE = 1, SRC_FILES = 2, SRC_BASE = 3 };

struct source { unsigned char kind; short layer, map; };

void resolve(const struct table *t, const char *p, size_t plen, struct resolution *r);
int is_mapping_ancestor(const struct table *t, const char *p, size_t plen);
/* The branch's layer-relative path; returns its length or -ENAMETOOLONG. */
int branch_rel(const struct table *t, const struct branch *b, const char *p, size_t plen, char *out, size_t cap);
/* The places to look, in order; returns their number. */
int sources_for(const struct table *t, const struct resolution *r, const char *p, size_t plen, struct source *out);
/* The folder fd and the relative name ('.' for the folder itself) of a source; -1 when its root is missing. */
int source_at(const struct table *t, const struct source *s, const char *p, size_t plen, char *rel, size_t cap);
/* Names of children of dir that some rule touches; fn called once per name. */
void special_children(const struct table *t, const char *dir, size_t dlen,
                      void (*fn)(const char *name, size_t len, void *arg), void *arg);
/* The chain as text for the `resolve` command. */
int resolution_text(const struct table *t, const char *p, size_t plen, char *out, size_t cap);

/* ---- nodes.c: node ids the kernel holds -------------------------------- */

struct dentry;

struct node {
  uint64_t nlookup;
  int refs;                 /* children dentries + open handles + in-flight uses */
  dev_t dev; ino_t ino;     /* the real file, for non-directories (hard links are one node) */
  mode_t type;              /* S_IFMT bits */
  int synthetic;            /* an ancestor of a mapping that exists nowhere */
  int hashed;               /* in the (dev, ino) table */
  struct node *hnext;
  struct dentry *aliases;   /* names of this node */
  struct dentry *children;  /* for directories: known names below */
  struct fh *handles;       /* open files, for fstat of unlinked files */
  int wd;                   /* inotify watch on its base folder, 0 for none */
  int self_written;         /* the server closed a file it wrote: its IN_CLOSE_WRITE is ours */
  int self_attr_busy;       /* attribute changes the server is making now */
  uint64_t self_attr_sum;   /* the attributes the kernel was last told after one (attr_sum) */
  time_t self_attr_at;
  int vanished;             /* a folder a switch took out of the view (see inval.c): not reused */
  int pt_id, pt_users;      /* passthrough.c: backing id and the opens using it */
  int cached_users;         /* passthrough.c: opens through the kernel's page cache */
  int pt_writers;           /* passthrough opens for writing (atomic): their backing files' closes are ours */
  int pt_foreign_writers;   /* of those, opened by a foreign caller (atomic; killpriv.c) */
  dev_t pt_dev; ino_t pt_ino; /* the backing file */
};

struct dentry {
  struct node *parent, *child;
  char *name; size_t nlen;
  struct dentry *hnext;             /* (parent, name) hash */
  struct dentry *sib_next, *sib_prev;
  struct dentry *alias_next;
};

extern pthread_mutex_t g_nodes;

void nodes_init(void);
struct node *node_root(void);
fuse_ino_t node_id(struct node *n);
/* Takes a use reference (node_unuse drops it); NULL for an unknown id. */
struct node *node_use(fuse_ino_t ino);
void node_unuse(struct node *n);
/* With g_nodes held: the view path of n (first name); its length or -ESTALE / -ENAMETOOLONG. */
int node_path_locked(struct node *n, char *buf, size_t cap);
int node_path(struct node *n, char *buf, size_t cap);
/* Records a lookup of parent/name that found st (NULL: synthetic folder); nlookup + 1. */
struct node *node_bind(struct node *parent, const char *name, size_t nlen, const struct stat *st);
void node_forget(fuse_ino_t ino, uint64_t n);
/* The kernel dropped parent/name (unlink, rmdir, or the source of a rename). */
void node_unname(struct node *parent, const char *name, size_t nlen);
void node_rename(struct node *p1, const char *n1, struct node *p2, const char *n2, int exchange);
/* After a copy-up the node is the copy: rekey it and return other names to invalidate. */
void node_rekey(struct node *n, const struct stat *st);
/* With g_nodes held: the child named name under parent, or NULL. */
struct node *node_child_locked(struct node *parent, const char *name, size_t nlen);
uint64_t nodes_count(void);
struct fh;
void node_attach_fh(struct node *n, struct fh *fh);
void node_detach_fh(struct node *n, struct fh *fh);
int node_any_fd(struct node *n); /* a dup, or -1 */
/* The st_ino shown for a real (dev, ino): stable across mounts. */
ino_t shown_ino(dev_t dev, ino_t ino);

/* ---- find.c: a view path to the file that serves it --------------------- */

struct found {
  struct stat st;
  int synthetic;
  struct source src;
  int dirfd;               /* of the source root; valid while the table is held */
  char rel[VPATH_MAX];
};

/* First existing source (or synthetic folder); 0 or -errno. */
int find_path(const struct table *t, const char *p, size_t plen, struct found *f);
void synthetic_stat(struct stat *st, const char *p, size_t plen);
/* Fills a reply entry for a node found at st. */
void fill_entry(struct fuse_entry_param *e, struct node *n, const struct stat *st);
/* path of parent + '/' + name; its length or -errno. */
int child_path(struct node *parent, const char *name, char *buf, size_t cap);
/* lookup as the ops do it: binds the node and fills e; 0 or -errno. */
int do_lookup(const struct table *t, struct node *parent, const char *name, struct fuse_entry_param *e);

/* ---- ident.c: acting as the caller ------------------------------------- */

struct ident { int switched; };
void ident_init(void);
/* Switches this thread's fsuid/fsgid/groups to the request's caller (root servers only). */
void ident_enter(fuse_req_t req, struct ident *id);
void ident_leave(struct ident *id);

/* ---- copyup.c ---------------------------------------------------------- */

/* Makes the branch's writable sublayer hold the folders above view path p (modes, owners and
   times copied from what the view shows there); server credentials. */
int ensure_writable_parents(const struct table *t, const struct branch *b, const char *p, size_t plen);
/* Copies f (what view path p shows) into the branch's writable sublayer; 0 or -errno. */
int copy_up(const struct table *t, const struct branch *b, const char *p, size_t plen, const struct found *f);
/* The file to modify for view path p: the base when nothing maps it, else the owner's writable
   copy, copied up first (n, when given, becomes the copy). f describes it after. */
int make_writable(const struct table *t, const char *p, size_t plen, struct found *f, struct node *n);
/* Removes a folder of the writable sublayer with everything in it. */
int remove_tree(int dirfd, const char *rel);

/* ---- files (ops_file.c) ------------------------------------------------ */

struct fh {
  int fd;
  struct node *node;
  pid_t pid;
  int writing;             /* opened for writing */
  int foreign;             /* ...by a caller other than root and the file's owner in its group (killpriv.c) */
  char *layer;             /* for open-files */
  char *path;              /* view path at open */
  int io;                  /* passthrough.c: FH_UNCOUNTED, FH_CACHED or FH_BACKING */
  int lower;               /* a layer's lower file (copied up on the first write open) */
  struct fh *next_of_node;
  struct fh *next, *prev;  /* all open files */
};

enum { FH_UNCOUNTED = 0, FH_CACHED, FH_BACKING };

void open_files_text(char **out, size_t *len);
struct fh *fh_new(int fd, struct node *n, fuse_req_t req, const char *layer, const char *path, int writing);
/* fuse_reply_create with the handle; frees it when the caller is gone. */
int reply_created(fuse_req_t req, struct fuse_entry_param *e, struct fuse_file_info *fi, struct fh *h);
/* Clears set-uid, and set-gid when group-executable, on fd as a write by this caller would
   (not for root); 1 when it did (the kernel is then told), 0, or -errno (killpriv.c). */
int kill_sxid(fuse_req_t req, struct node *n, int fd);
/* The mode a chmod may set: set-id bits are dropped while a foreign caller writes the file
   through passthrough, where they could not be cleared (killpriv.c). */
mode_t mode_allowed(struct node *n, mode_t m);
/* Whether a write open of fd by this caller is foreign (killpriv.c). */
int writer_foreign(fuse_req_t req, int fd);
/* The real fd of an open file, -1 without one. */
int fh_fd(struct fuse_file_info *fi);

/* ---- passthrough.c ------------------------------------------------------- */

/* After mounting, before serving: the INIT reply asks for KILLPRIV_V2, and for passthrough when
   wanted (root only). */
int pt_start(int wanted);
/* fuse_reply_open / fuse_reply_create, in passthrough when the kernel agreed and the node allows. */
int pt_reply_open(fuse_req_t req, struct fuse_file_info *fi, struct fh *h);
int pt_reply_create(fuse_req_t req, const struct fuse_entry_param *e, struct fuse_file_info *fi, struct fh *h);
/* The handle is going: its node's passthrough or page-cache count. */
void pt_release(struct fh *h);

/* ---- warm.c ------------------------------------------------------------- */

struct warmed {
  long folders, names, ms;
  int partial; /* stopped at a bound, folders left cold */
  int error;   /* errno of opening the mount; 0 */
};
/* Lists the mount top down until every folder is listed or a bound is reached (control thread). */
void warm(long max_names, long max_ms, struct warmed *out);

/* ---- ops ---------------------------------------------------------------- */

/* Where a new name goes (ops_ns.c). */
struct target {
  char path[VPATH_MAX];
  size_t plen;
  struct resolution r;
  int owner;              /* layer index, -1 for the base */
  int dirfd;
  char rel[VPATH_MAX];     /* under dirfd; for a layer also its rel in the writable sublayer */
  size_t orlen;
};
int target_for(const struct table *t, struct node *parent, const char *name, struct target *tg, int must_be_new);
void target_made(const struct table *t, const struct target *tg, int is_dir);
/* Something below the owner's writable sublayer holds p: visible (through its whiteouts and
   opaque folders), or raw (whatever the marks say: a removal must then leave a whiteout). */
int exists_below_owner(const struct table *t, const char *p, size_t plen, int raw);
/* The merged folder at view path p lists nothing: 1, 0, or -errno (ops_dir.c). */
int dir_is_empty(const struct table *t, const char *p, size_t plen);

/* Each file's operations into the table (ops_*.c). */
void ns_ops(struct fuse_lowlevel_ops *o);
void rename_ops(struct fuse_lowlevel_ops *o);
void attr_ops(struct fuse_lowlevel_ops *o);
void file_ops(struct fuse_lowlevel_ops *o);
void dir_ops(struct fuse_lowlevel_ops *o);

/* The view as the server runs it. */
struct viewd {
  struct fuse_session *se;
  char *mountpoint;
  int base_fd;
  dev_t base_dev;
  int root;               /* euid 0: act as each caller */
  double timeout;         /* entry/attr seconds */
  int no_opendir;         /* the kernel takes ENOSYS from opendir: listings without handles */
  pthread_t main_thread;
  /* counters for `stats` */
  uint64_t lookups, forgets, invalidations, writes; /* writes: WRITE requests (none in passthrough) */
  uint64_t getxattrs;       /* GETXATTR requests (the kernel's security.capability check before writes) */
  /* serializes namespace changes and copy-ups */
  pthread_mutex_t ns_lock;
};
extern struct viewd g;

/* ---- inval.c ------------------------------------------------------------ */

/* Installs a new table and invalidates what changed; returns the number of notifications. */
long rules_apply(struct table *nt);
/* A notification to send from the notifier thread (never from a worker mid-request). */
void notify_later_entry(fuse_ino_t parent, const char *name, size_t nlen);
void notify_later_inode(fuse_ino_t ino);
int notifier_start(void);
/* A lookup in the root found nothing (see inval.c). */
void note_root_miss(const char *name);

/* ---- watch.c: the base changing behind the view ---------------------------- */

int watch_start(void);
/* Watches the base folder at rel (relative to the base) for node n, a directory. */
void watch_add(struct node *n, const char *rel);
void watch_drop_locked(struct node *n);
/* The server itself is about to change parent/name in the base. */
void watch_self(fuse_ino_t parent, const char *name);
/* The server itself is about to change n's attributes (mode, owner, times, size, xattrs)... */
void watch_self_attr_begin(struct node *n);
/* ... and did: st is what the file has now (NULL when it failed or is unknown). An IN_ATTRIB of
   n's base file is then skipped while the file still has those attributes. */
void watch_self_attr_end(struct node *n, const struct stat *st);
/* The server is about to close a file it wrote (st: its attributes now, or NULL). */
void watch_self_closed(struct node *n, const struct stat *st);

/* ---- control.c ---------------------------------------------------------- */

int control_start(const char *sock_path); /* binds */
int control_run(void);                     /* serves on its own thread */
void control_stop(void);

/* A thread with every signal blocked (they belong to the main thread's loop). */
int start_thread(void *(*fn)(void *), void *arg);

/* ---- log ---------------------------------------------------------------- */
void vlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
