{
  "targets": [
    {
      "target_name": "concord_sync_within",
      "sources": ["src/wal/native/sync_within.c"],
      "cflags": ["-O2", "-Wall", "-Wextra"],
      "libraries": ["-lpthread"]
    }
  ]
}
