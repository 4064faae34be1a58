#!/bin/sh
# Builds the installer package secure-endpoint-monitoring-@VERSION@.pkg from this kit. Run it on a Mac
# (pkgbuild, productbuild, codesign and productsign come with macOS and the Command Line Tools):
#
#   sh build-pkg.sh                       an unsigned package, for tests and for MDMs that take one
#   APP_IDENTITY="Developer ID Application: Example (TEAMID)" \
#   INSTALLER_IDENTITY="Developer ID Installer: Example (TEAMID)" sh build-pkg.sh
#                                         compiled modules signed, package signed, ready to notarise
#
# The package lands beside this folder (or in $OUT_DIR). Notarise and staple a signed one with:
#   xcrun notarytool submit secure-endpoint-monitoring-@VERSION@.pkg --keychain-profile NOTARY --wait
#   xcrun stapler staple secure-endpoint-monitoring-@VERSION@.pkg
set -eu
kit=$(cd "$(dirname "$0")" && pwd -P)
out=${OUT_DIR:-$(dirname "$kit")}
name=secure-endpoint-monitoring-@VERSION@
work=$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
cp -R "$kit/payload" "$work/root"
# A downloaded kit carries quarantine and Finder attributes: none of them belongs in the payload.
xattr -cr "$work/root" 2>/dev/null || true
find "$work/root" \( -name .DS_Store -o -name '._*' \) -exec rm -f {} +
# The kit's modes, whatever umask unpacked it: folders 0755, nothing writable but by its owner.
find "$work/root" -type d -exec chmod 755 {} +
chmod -R go-w "$work/root"
if [ -n "${APP_IDENTITY:-}" ]; then
    # The notary service accepts only Mach-O code signed with a Developer ID and a secure timestamp:
    # the dependencies' compiled modules come from PyPI signed ad hoc at best.
    find "$work/root" -type f \( -name '*.so' -o -name '*.dylib' \) -print0 |
        xargs -0 codesign --force --timestamp --options runtime --sign "$APP_IDENTITY"
fi
# The payload is the program's folder alone, installed at its place: no system folder (/Library,
# /Library/LaunchDaemons, ...) is in it, so Installer has none whose owner or mode it could change.
pkgbuild --root "$work/root" --scripts "$kit/scripts" --identifier @IDENTIFIER@ --version @VERSION@ \
    --install-location "@HOME@" --ownership recommended "$work/@COMPONENT@"
productbuild --distribution "$kit/distribution.xml" --package-path "$work" "$work/$name.pkg"
if [ -n "${INSTALLER_IDENTITY:-}" ]; then
    productsign --sign "$INSTALLER_IDENTITY" "$work/$name.pkg" "$out/$name.pkg"
    pkgutil --check-signature "$out/$name.pkg"
else
    mv "$work/$name.pkg" "$out/$name.pkg"
    echo "unsigned: set INSTALLER_IDENTITY (and APP_IDENTITY) to sign"
fi
echo "$out/$name.pkg"
