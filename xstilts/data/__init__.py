"""Data in: every task's splits loaded from local files, the hub or DVC into canonical rows (load), DVC-versioned
sources pinned to a commit (dvc), and the validate step, which writes the run's dataset after great-expectations
checks (validate). It may import the base modules and tasks; not models, train or anything above.
"""
