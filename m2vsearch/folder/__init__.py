"""One index folder on disk: layout, creation, snapshots, the writer lock, atomic swaps, failures."""
