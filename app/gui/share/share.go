// Package share is the Share section (donating GPU time to a pool) of the desktop window.
// Until its service methods exist in app/core it shows what the section will offer.
package share

import (
	"fyne.io/fyne/v2"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/coming"
)

// New returns the section's page.
func New(sec core.Section) fyne.CanvasObject { return coming.View(sec) }
