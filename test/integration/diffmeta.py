# The metadata half of the differential check (differential.test.ts runs it, as root and as an
# ordinary user): seeded random operations applied to a Strata view and to a plain directory with
# the same starting tree, under changing umasks, with byte names (not UTF-8) and names up to 255
# bytes. Each outcome (value or errno) and, every so often, both trees (type, mode, owner, nlink of
# non-directories, size, content, user xattrs, link targets) must be the same.
#
#   python3 diffmeta.py setup base|layer ROOT UID GID  -> a starting tree (UID:GID own some folders)
#   python3 diffmeta.py run VIEW REF SEED OPS          -> prints {"ops": N, "done": {OP: N}, "mismatch": null | "..."}
#   python3 diffmeta.py snapshot ROOT                  -> prints the tree, one line per entry
import errno
import hashlib
import json
import os
import random
import stat
import sys

NAMES = [b'a', b'b', b'c', b'd', b'f1', b'h1', b'u', b'x', b'\xff.bin', b'\xfe.bin', 'é'.encode(), b'n' * 255, b'm' * 240]
# Folders an ordinary user owns (in the base, in the layer, and one with the set-group-id bit): most operations start there.
HOMES = [b'c/u', b'a/u', b'c/g', b'']
UMASKS = [0o022, 0o000, 0o077, 0o027, 0o002]
FILE_MODES = [0o644, 0o600, 0o755, 0o700, 0o4755, 0o2755, 0o1777, 0o000, 0o444, 0o666]
DIR_MODES = [0o777, 0o755, 0o700, 0o2775, 0o1777]
CREATE_MODES = [0o666, 0o644, 0o600, 0o4755, 0o777]


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def entry(p):
    st = os.lstat(p)
    kind = 'l' if stat.S_ISLNK(st.st_mode) else 'd' if stat.S_ISDIR(st.st_mode) else 'p' if stat.S_ISFIFO(st.st_mode) else 'f'
    out = [kind, oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid]
    if kind != 'd':
        out.append(st.st_nlink)  # a merged directory's link count depends on its sublayers
    if kind == 'f':
        out.append(st.st_size)
        try:
            with open(p, 'rb') as f:
                out.append(hashlib.sha1(f.read()).hexdigest()[:12])
        except OSError as e:
            out.append(errname(e))
    if kind == 'l':
        out.append(os.readlink(p).hex())
    if kind in 'fd':
        try:
            out.append(sorted((n, os.getxattr(p, n, follow_symlinks=False).hex()) for n in os.listxattr(p, follow_symlinks=False) if n.startswith('user.')))
        except OSError as e:
            out.append(errname(e))
    return out


def snapshot(root):
    lines = []

    def walk(rel):
        try:
            names = sorted(os.listdir(os.path.join(root, rel) if rel else root))
        except OSError as e:
            lines.append('%s %s' % (rel.hex(), errname(e)))
            return
        for n in names:
            r = rel + b'/' + n if rel else n
            try:
                e = entry(os.path.join(root, r))
            except OSError as x:
                e = [errname(x)]
            lines.append('%s %s' % (r.hex(), json.dumps(e)))
            if e[0] == 'd':
                walk(r)

    walk(b'')
    return lines


def ops(rnd, uid, gid, other_uid, other_gid):
    def p_():
        depth = 1 if rnd.random() < 0.5 else 2 if rnd.random() < 0.7 else 3
        rel = b'/'.join(rnd.choice(NAMES) for _ in range(depth))
        home = rnd.choice(HOMES) if rnd.random() < 0.8 else b''
        return home + b'/' + rel if home else rel

    def write(p, n, append=False):
        fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK | (os.O_APPEND if append else os.O_CREAT | os.O_TRUNC), 0o666)
        try:
            os.write(fd, (b'w%d\n' % n) * (1 + n % 5))
        finally:
            os.close(fd)

    def read(p):
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
        try:
            return os.read(fd, 1 << 16).hex()
        finally:
            os.close(fd)

    def create(p, mode):
        os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))

    def st(p):
        return entry(p)[:5] if os.path.lexists(p) else os.lstat(p)

    owners = [(uid, gid), (other_uid, other_gid), (-1, other_gid), (other_uid, -1), (0, 0)]
    table = [
        (14, 'write', lambda p, q, n: write(p, n)),
        (6, 'append', lambda p, q, n: write(p, n, True)),
        (10, 'read', lambda p, q, n: read(p)),
        (6, 'create', lambda p, q, n: create(p, CREATE_MODES[n % len(CREATE_MODES)])),
        (3, 'truncate', lambda p, q, n: os.truncate(p, n % 5)),
        (6, 'unlink', lambda p, q, n: os.unlink(p)),
        (8, 'mkdir', lambda p, q, n: os.mkdir(p, DIR_MODES[n % len(DIR_MODES)])),
        (4, 'rmdir', lambda p, q, n: os.rmdir(p)),
        (3, 'symlink', lambda p, q, n: os.symlink(q, p)),
        (8, 'link', None),
        (3, 'mkfifo', lambda p, q, n: os.mkfifo(p, FILE_MODES[n % len(FILE_MODES)])),
        (6, 'chmod', lambda p, q, n: None if os.path.islink(p) else os.chmod(p, FILE_MODES[n % len(FILE_MODES)])),
        (4, 'chown', lambda p, q, n: os.lchown(p, *owners[n % len(owners)])),
        (5, 'setxattr', lambda p, q, n: os.setxattr(p, 'user.k%d' % (n % 3), b'v%d' % n, follow_symlinks=False)),
        (4, 'removexattr', lambda p, q, n: os.removexattr(p, 'user.k%d' % (n % 3), follow_symlinks=False)),
        (3, 'getxattr', lambda p, q, n: os.getxattr(p, 'user.k%d' % (n % 3), follow_symlinks=False).hex()),
        (3, 'listxattr', lambda p, q, n: sorted(x for x in os.listxattr(p, follow_symlinks=False) if x.startswith('user.'))),
        (12, 'stat', lambda p, q, n: st(p)),
        (6, 'readdir', lambda p, q, n: sorted(x.hex() for x in os.listdir(p))),
        (6, 'rename', None),
    ]
    total = sum(w for w, _, _ in table)

    def choose():
        x = rnd.random() * total
        for w, name, fn in table:
            x -= w
            if x < 0:
                return name, fn
        return table[0][1], table[0][2]

    return p_, choose


def outcome(fn):
    try:
        v = fn()
        return 'ok:' + json.dumps(v)
    except OSError as e:
        return 'err:' + errname(e)


def mv_fallback(src, dst):
    """mv across file systems: what rename(2) would refuse, then copy (keeping modes, owners and xattrs) and delete."""
    import shutil
    s = os.lstat(src)
    if os.path.lexists(dst):
        d = os.lstat(dst)
        if stat.S_ISDIR(d.st_mode) and not stat.S_ISDIR(s.st_mode):
            raise OSError(errno.EISDIR, 'is a directory')
        if not stat.S_ISDIR(d.st_mode) and stat.S_ISDIR(s.st_mode):
            raise OSError(errno.ENOTDIR, 'not a directory')
        if stat.S_ISDIR(d.st_mode) and os.listdir(dst):
            raise OSError(errno.ENOTEMPTY, 'not empty')
        if stat.S_ISDIR(d.st_mode):
            os.rmdir(dst)
        else:
            os.unlink(dst)

    def copy(a, b):
        st_ = os.lstat(a)
        if stat.S_ISDIR(st_.st_mode):
            os.mkdir(b, 0o700)
            for n in os.listdir(a):
                copy(os.path.join(a, n), os.path.join(b, n))
        elif stat.S_ISLNK(st_.st_mode):
            os.symlink(os.readlink(a), b)
        elif stat.S_ISFIFO(st_.st_mode):
            os.mkfifo(b, 0o600)
        else:
            shutil.copyfile(a, b, follow_symlinks=False)
        if not stat.S_ISLNK(st_.st_mode):
            for n in os.listxattr(a, follow_symlinks=False):
                if n.startswith('user.'):
                    os.setxattr(b, n, os.getxattr(a, n, follow_symlinks=False), follow_symlinks=False)
        try:
            os.lchown(b, st_.st_uid, st_.st_gid)
        except PermissionError:
            pass
        if not stat.S_ISLNK(st_.st_mode):
            os.chmod(b, stat.S_IMODE(st_.st_mode))

    copy(src, dst)
    shutil.rmtree(src) if stat.S_ISDIR(s.st_mode) else os.unlink(src)


def run(view, ref, seed, count):
    rnd = random.Random(seed)
    uid, gid = os.getuid(), os.getgid()
    other_uid, other_gid = (1234, 1234) if uid == 0 else (0, 0)
    pick, choose = ops(rnd, uid, gid, other_uid, other_gid)
    done = {}  # per operation: how many succeeded, so a run that only met errors shows
    for n in range(count):
        name, fn = choose()
        p, q = pick(), pick()
        if name in ('link', 'rename') and rnd.random() < 0.5:
            q = os.path.join(os.path.dirname(p), rnd.choice(NAMES))  # a sibling: more of them succeed
        os.umask(rnd.choice(UMASKS))
        vp, vq, rp, rq = (os.path.join(view, p), os.path.join(view, q), os.path.join(ref, p), os.path.join(ref, q))
        if name == 'rename':
            got = outcome(lambda: os.rename(vp, vq))
            if got == 'err:EXDEV':
                # The view keeps sublayers apart, as overlayfs does: mv copies then, on both sides alike.
                got = outcome(lambda: mv_fallback(vp, vq))
                want = outcome(lambda: mv_fallback(rp, rq))
            else:
                want = outcome(lambda: os.rename(rp, rq))
        elif name == 'link':
            got = outcome(lambda: os.link(vp, vq, follow_symlinks=False))
            # A hard link across sublayers is EXDEV, as across file systems: nothing to compare.
            want = got if got == 'err:EXDEV' else outcome(lambda: os.link(rp, rq, follow_symlinks=False))
        elif name == 'symlink':
            got = outcome(lambda: os.symlink(q, vp))
            want = outcome(lambda: os.symlink(q, rp))
        else:
            got = outcome(lambda: fn(vp, vq, n))
            want = outcome(lambda: fn(rp, rq, n))
        if got.startswith('ok:'):
            done[name] = done.get(name, 0) + 1
        if got != want:
            return {'ops': n, 'done': done, 'mismatch': 'op %d: %s %r %r: view gave %s, plain directory gave %s' % (n, name, p, q, got, want)}
        if n % 250 == 249:
            a, b = snapshot(view), snapshot(ref)
            if a != b:
                diff = [x for x in a if x not in b][:3] + ['--'] + [x for x in b if x not in a][:3]
                return {'ops': n, 'done': done, 'mismatch': 'trees differ after op %d (view, then plain): %s' % (n, diff)}
    return {'ops': count, 'done': done, 'mismatch': None}


def setup(kind, root, uid, gid):
    def put(rel, data=b'', mode=0o644):
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(data)
        os.chmod(p, mode)
        return p

    def own(rel, mode):
        p = os.path.join(root, rel)
        os.makedirs(p, exist_ok=True)
        os.chown(p, uid, gid)
        os.chmod(p, mode)

    if kind == b'base':
        put(b'a/f1', b'base a f1\n')
        put(b'a/b/f2', b'base f2\n')
        os.setxattr(put(b'c/f3', b'base f3\n'), 'user.k0', b'base')
        put(b'top', b'top\n')
        os.link(put(b'c/h1', b'linked\n'), os.path.join(root, b'c/h2'))
        os.mkfifo(os.path.join(root, b'c/fifo'), 0o644)
        put(b'c/\xff.bin', b'ff\n')
        put(b'c/' + b'n' * 255, b'long\n')
        own(b'c/u', 0o755)
        os.chown(put(b'c/u/own', b'mine\n'), uid, gid)
        own(b'c/g', 0o2775)
        os.chown(os.path.join(root, b'c/g'), 0, gid)
    else:
        put(b'a/f1', b'layer a f1 longer\n')
        put(b'a/l1', b'layer l1\n', 0o755)
        os.makedirs(os.path.join(root, b'a/b'), exist_ok=True)
        os.setxattr(put(b'd/f4', b'layer f4\n'), 'user.k1', b'layer')
        # No hard links inside the layer: copy-up breaks them, as overlayfs does (docs/limits.md).
        put(b'a/h1', b'layer h1\n')
        put(b'a/\xfe.bin', b'fe\n')
        own(b'a/u', 0o755)
        os.chown(put(b'a/u/own', b'mine in the layer\n'), uid, gid)
        os.chmod(os.path.join(root, b'a/u/own'), 0o4755)  # after chown, which clears it


if __name__ == '__main__':
    if sys.argv[1] == 'setup':
        setup(os.fsencode(sys.argv[2]), os.fsencode(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == 'snapshot':
        print('\n'.join(snapshot(os.fsencode(sys.argv[2]))))
    else:
        print(json.dumps(run(os.fsencode(sys.argv[2]), os.fsencode(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))))
