{
  "targets": [
    {
      "target_name": "strata_fuse",
      "sources": [
        "daemon/fuse/native/addon.c",
        "daemon/fuse/native/napi_util.c",
        "daemon/fuse/native/request.c",
        "daemon/fuse/native/jsbridge.c",
        "daemon/fuse/native/ops.c",
        "daemon/fuse/native/fastpath.c",
        "daemon/fuse/native/invalidate.c",
        "daemon/fuse/native/mount.c",
        "daemon/fuse/native/mountsys.c"
      ],
      "cflags": ["-O2", "-Wall", "-Wextra", "<!@(pkg-config --cflags fuse3)"],
      "libraries": ["<!@(pkg-config --libs fuse3)"],
      "defines": ["FUSE_USE_VERSION=314", "NAPI_VERSION=8"]
    },
    {
      "target_name": "strata-viewd",
      "type": "executable",
      "sources": [
        "daemon/fuse/viewd/main.c",
        "daemon/fuse/viewd/control.c",
        "daemon/fuse/viewd/rules.c",
        "daemon/fuse/viewd/resolve.c",
        "daemon/fuse/viewd/marks.c",
        "daemon/fuse/viewd/nodes.c",
        "daemon/fuse/viewd/find.c",
        "daemon/fuse/viewd/ident.c",
        "daemon/fuse/viewd/copyup.c",
        "daemon/fuse/viewd/inval.c",
        "daemon/fuse/viewd/watch.c",
        "daemon/fuse/viewd/ops_ns.c",
        "daemon/fuse/viewd/ops_rename.c",
        "daemon/fuse/viewd/ops_attr.c",
        "daemon/fuse/viewd/ops_file.c",
        "daemon/fuse/viewd/ops_dir.c",
        "daemon/fuse/viewd/util.c"
      ],
      "cflags": ["-O2", "-Wall", "-Wextra", "<!@(pkg-config --cflags fuse3)"],
      "libraries": ["<!@(pkg-config --libs fuse3)", "-lpthread"],
      "defines": ["FUSE_USE_VERSION=314", "_GNU_SOURCE"]
    }
  ]
}
