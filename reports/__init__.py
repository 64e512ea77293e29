"""Reading a run directory back: the inspector's views, charts and the self-contained HTML report."""
