"""asyncresolve's benchmarks: ``python -m benchmarks`` runs every scenario for every contender."""
