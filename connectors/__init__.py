"""The edges of guidang: where matters come from and where packages go. Imports only `schemas`.

- `sources/`: `open_source` and the `SourceConnector` interface (`base`); the unified system
  (`unified`, HTTP JSON) and the self-built systems described in guidang.yaml (`sql`, with
  `sql_queries` and `sql_mapping`); `http`, how every source reads an HTTP status and streams a
  document (resuming one cut short).
- `repositories/`: `open_repository` and the `Repository` interface with its errors (`base`); the
  filesystem (`fs`) and S3 (`s3`, with `s3_client`, `s3_multipart`, `s3_verify`); `disposal`, their
  locks, deletion and repair writes after the transfer; `replicated`, the archive with its copies
  (`open_with_replicas`, `catch_up`).
- `retry`: the one retry loop (attempts, capped exponential backoff, a log line per failure) that
  sources and repositories share.
"""
