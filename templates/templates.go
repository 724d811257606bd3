// Package templates holds the built-in mail templates and setpass's web
// pages, embedded into the binaries so a deployment needs no template
// files. See README.md and pages/README.md.
package templates

import "embed"

// FS holds layout.txt, layout.html and <kind>/{subject.txt,body.txt,body.html}
// for mail, and pages/ for setpass's web pages and their style sheet.
//
//go:embed layout.txt layout.html */subject.txt */body.txt */body.html pages/*.html pages/*.css
var FS embed.FS
