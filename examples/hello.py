# `gridctl run examples/hello.py -- a b`: the python runtime is chosen from the extension.
import platform
import sys

print(f"hello from Python {platform.python_version()} with args {sys.argv[1:]}")
