"""Benchmarks: ``make bench`` runs :mod:`bench.intake`. Measurements only, never assertions on timing."""
