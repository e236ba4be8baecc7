"""The data plane: queue, workers, provider calls, routing, rules, recording and rollups."""
