package assets

import "embed"

// Web is the web UI: the static page, its script, styles and icon under web/static, and
// the server-rendered HTML partials under web/templates.
//
//go:embed web
var Web embed.FS
