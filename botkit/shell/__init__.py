"""The shell: the command line, the console, the HTTP server and the worker processes."""
