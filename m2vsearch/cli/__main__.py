"""`python -m m2vsearch.cli`."""

from m2vsearch.cli import main

main()
