#!/bin/sh
# @NAME@ from the macOS package (secure-endpoint-monitoring @VERSION@).
# Installed in @HOME@/bin; /usr/local/bin/@NAME@ is a relative link to it. The script finds its own
# folder through that link (plain readlink: macOS before 12.3 has no readlink -f), picks the interpreter
# (libexec/python.sh) and runs libexec/launch.py isolated (-I -S: no PYTHON* variables, no user or
# system site-packages, not the current folder), so only the package's own libraries are imported.
self=$0
while [ -L "$self" ]; do
    link=$(readlink "$self") || break
    case $link in
        /*) self=$link ;;
        *) self=${self%/*}/$link ;;
    esac
done
case $self in
    */*) bin=${self%/*} ;;
    *) bin=. ;;
esac
home=$(cd "$bin/.." && pwd -P) || exit 3
. "$home/libexec/python.sh"
if ! pick_python "$home"; then
    if [ "@NAME@" = check_secure_endpoint ]; then
        echo "SECURE ENDPOINT UNKNOWN - $why"
    else
        echo "@NAME@: $why" >&2
        # Under launchd (the plist sets this variable) a quick exit is restarted every 10 s: wait a while first.
        [ -n "${SECURE_ENDPOINT_EXPORTER_ARGS_FILE:-}" ] && sleep 300
    fi
    exit 3
fi
exec "$python" -I -S "$home/libexec/launch.py" @NAME@ "$@"
