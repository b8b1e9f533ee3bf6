#!/bin/sh
# Install guacamole-common-js and turn its ES module into a classic script next to the
# gateway's page. A classic script because the hub's cookie authentication accepts
# same-origin "no-cors" loads without an XSRF token, and module scripts load as "cors".
# Fast when already done; the result is package data, not committed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest="$here/../static/vendor/guacamole-common.js"
src="$here/node_modules/guacamole-common-js/dist/esm/guacamole-common.min.js"
if [ ! -f "$src" ]; then
    (cd "$here" && npm install --no-audit --no-fund --loglevel=error)
fi
if [ ! -f "$dest" ] || [ "$src" -nt "$dest" ] || [ "$0" -nt "$dest" ]; then
    # the module's only export is its top-level "var Guacamole", which a classic
    # script makes global
    grep -q 'export default Guacamole;' "$src"
    sed 's/export default Guacamole;//' "$src" > "$dest.tmp"
    mv "$dest.tmp" "$dest"
fi
echo "guacamole-common-js: $dest"
