"""Shapes of data: the canonical model, configuration, package layout, coded findings, XSDs."""
