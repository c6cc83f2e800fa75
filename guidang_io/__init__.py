"""How guidang's processes meet the machine: the disk read and written past the page cache, the heap
tuned for block reads, and the crash points where a test may kill a process mid-write.

Imports only `schemas` (the digest recipes and their block size). Below every layer that touches a
disk or the ledger (`ledger`, `connectors`, `packager`, `night`), which is why it is neither in
`schemas` (shapes of data only) nor in `connectors` (which `packager` may not import).

    direct_io    O_DIRECT writes and reads of document files, falling back to buffered I/O
    block_reads  glibc's heap kept for block-sized buffers; a stored file's digests read directly
    crashpoints  named points where GUIDANG_CRASH_AT kills the process (the crash-resume suite)
"""
