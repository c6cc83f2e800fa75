"""guidang's demo world: simulators of the source systems and the folder `guidang demo` runs a night over.

Not part of a production night: only the `guidang demo` command (lazily) and the tests load it. It
may import `schemas`, `connectors` and `retention`, never `packager`, `ledger`, `night`, `custody` or `flows`.

    world          build_world: the whole demo folder (config, retention workbook, three sources)
    catalogue      the demo 事项目录, 全宗 and week every source draws from
    unified_simulator  UnifiedSimulator: the unified system's interface over HTTP on 127.0.0.1
    unified_completed  its 办结 statistics and listing endpoints (应归尽归)
    unified_changes    changes while it runs: 补充材料, corrections, a matter behind the watermark
    faults         Fault, FaultPlan: the simulator's deterministic fault injection
    serving        the HTTP plumbing under the simulator (answers a fault can cut short)
    unified_data   write_unified_dataset: the unified system's 办件 records and PDFs as files
    selfbuilt      the two self-built systems' table layouts and guidang.yaml entries
    selfbuilt_data write_tzxm, write_sjjc: their rows, as SQLite databases
    identities     invented names, 居民身份证号 and 统一社会信用代码 with right check characters
    pdfs           make_pdf, make_broken_pdf: deterministic PDFs (fpdf2)

`python -m guidang_demo DATA_DIR` serves a unified dataset by hand.
"""
