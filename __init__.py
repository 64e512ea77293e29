"""teachloop: teacher agents that find what a small language model is bad at, make data aimed at
it, train the model with TRL, and loop."""

__version__ = "0.1.0"
