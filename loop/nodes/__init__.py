"""The loop's nodes: each reads its inputs from the run directory, calls an agent or a trainer,
writes its outputs whole, and returns a small state update.

Nodes are deterministic given the run's seed and the files before them, so a node re-run after a
crash writes the same artifacts again; no node appends to a file another run of it wrote.
Things that cannot be checkpointed (environment, tracer, config) come from the runtime context.
One module per concern: evaluate (setup, evaluate, stop), teach (diagnose, plan, generate,
revise), data (score, select), train (rollout, train); wrap puts each in a span.
"""
