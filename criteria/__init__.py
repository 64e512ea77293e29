"""CritiQ, whole: preference pairs, the criteria library, manager and worker agents, the mining graph, scoring and distillation."""
