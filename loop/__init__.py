"""The improvement loop: its LangGraph graph, state, nodes, runner and run configuration."""
