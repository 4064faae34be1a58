#!/bin/sh
# Removes secure-endpoint-monitoring from this Mac: the launch daemon, the program, its links, logs and
# state, and the installer's receipt. --keep-config keeps @HOME@/etc. Run as root:
#   sudo "@HOME@/uninstall.sh"
# The Full Disk Access profile is the MDM's: remove it there.
label=@LABEL@
home="@HOME@"
if [ "$(/usr/bin/id -u)" != 0 ]; then
    echo "uninstall.sh: run as root (sudo \"$0\")" >&2
    exit 1
fi
/bin/launchctl bootout "system/$label" 2>/dev/null
/bin/rm -f "/Library/LaunchDaemons/$label.plist"
for command in check_secure_endpoint secure-endpoint-exporter; do
    link="/usr/local/bin/$command"
    case $(/usr/bin/readlink "$link" 2>/dev/null) in
        *"@HOME@/bin/$command") /bin/rm -f "$link" ;;
    esac
done
if [ "${1:-}" = --keep-config ]; then
    /bin/rm -rf "$home/bin" "$home/lib" "$home/libexec" "$home/launchd" "$home/VERSION" "$home/uninstall.sh" \
        "$home/.install-state"
else
    /bin/rm -rf "$home"
fi
/bin/rm -rf /Library/Logs/secure-endpoint-monitoring /var/lib/secure-endpoint-monitoring
/usr/sbin/pkgutil --forget @IDENTIFIER@ >/dev/null 2>&1
echo "secure-endpoint-monitoring removed"
