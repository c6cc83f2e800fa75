"""Shapes of data: the canonical model, configuration, package layout, coded findings, XSDs.

Imports nothing of ours, so every other package may import it; what reads or writes a disk (direct
I/O, the heap tuned for it, crash points) is in `guidang_io`, one layer up.
"""
