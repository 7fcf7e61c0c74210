"""Finding files, reading them as text and cutting them into chunks."""
