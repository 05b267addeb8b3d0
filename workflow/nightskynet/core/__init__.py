"""What every layer shares: config, errors, files written atomically, tables, the class names, the networks' typed
settings (architecture) and the code digests of the rerun machinery. Imports nothing above it."""
