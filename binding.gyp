{
  "targets": [
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
        "daemon/fuse/viewd/passthrough.c",
        "daemon/fuse/viewd/ops_dir.c",
        "daemon/fuse/viewd/warm.c",
        "daemon/fuse/viewd/killpriv.c",
        "daemon/fuse/viewd/util.c"
      ],
      "cflags": ["-O2", "-Wall", "-Wextra", "<!@(pkg-config --cflags fuse3)"],
      "libraries": ["<!@(pkg-config --libs fuse3)", "-lpthread"],
      "defines": ["FUSE_USE_VERSION=314", "_GNU_SOURCE"]
    }
  ]
}
