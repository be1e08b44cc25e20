#!/bin/sh
# A script for `gridctl run examples/hello.sh -- NAME`: prints to both streams
# (stdout and stderr stay apart all the way to your terminal).
echo "hello, ${1:-stranger}, from $(hostname)"
echo "this line goes to stderr" >&2

