"""The ``dagship`` command line: parse, call one library function, render."""
