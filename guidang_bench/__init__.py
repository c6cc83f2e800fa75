"""`guidang bench`: the real night timed over a generated world, beside bagit-python and the hash limit.

Figures, not a test. May import `schemas`, `guidang_io`, `retention`, `ledger`, `connectors`,
`packager`, `night` and `guidang_demo` (the bench world's generator); never `flows` (the command
line in `flows/cli` calls it) and never Prefect (the command hands in what describes the Prefect
server).

    timing      run_bench: the contenders, each timed; the night as a child `guidang run`
    yardsticks  the hash limit, bagit and the required-work floor
    memory      the whole process tree's memory, sampled while a night runs
    figures     the result as JSON figures and as text
    cpu_profile `guidang bench --profile`: the night's CPU per matter, by subsystem, under cProfile
"""
