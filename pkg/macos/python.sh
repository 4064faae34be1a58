# Sourced by the package's launchers and its postinstall script: the one place that picks the Python.
# pick_python HOME sets $python, or sets $why and returns 1.
# The Command Line Tools' own python3 is named by its real path, never through the /usr/bin/python3
# shim: without the tools the shim offers to install them (a dialog no daemon can answer), and Full Disk
# Access is then granted to one known, Apple-signed interpreter (docs/macos.md). A path written in
# HOME/etc/python (one line) replaces the search, for another Python 3.9 or later.
pick_python() {
    python=
    why=
    if [ -r "$1/etc/python" ]; then
        IFS= read -r python < "$1/etc/python" || [ -n "$python" ]
        if [ -x "$python" ] && [ ! -d "$python" ]; then
            return 0
        fi
        why="the interpreter named in $1/etc/python ($python) cannot be run"
        return 1
    fi
    for python in /Library/Developer/CommandLineTools/usr/bin/python3 \
                  /Applications/Xcode.app/Contents/Developer/usr/bin/python3; do
        if [ -x "$python" ]; then
            return 0
        fi
    done
    python=
    why="no Python 3.9 or later: install the Command Line Tools (xcode-select --install) or name an interpreter in $1/etc/python"
    return 1
}
