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
    }
  ]
}
