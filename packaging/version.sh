#!/bin/sh
# Prints a Debian version for this checkout: a tag like v1.2.3 gives 1.2.3,
# anything else 0.0.0~git<hash> (dashes become plus signs).
v=$(git describe --tags --dirty 2>/dev/null) || v=0.0.0~git$(git rev-parse --short HEAD 2>/dev/null || echo dev)
v=${v#v}
case $v in
  [0-9]*) ;;
  *) v=0.0.0~$v ;;
esac
echo "$v" | tr - +
