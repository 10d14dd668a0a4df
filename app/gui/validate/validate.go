// Package validate is the Validate section (scoring image–text pairs with DFN CLIP) of the desktop window.
// Until its service methods exist in app/core it shows what the section will offer.
package validate

import (
	"fyne.io/fyne/v2"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/coming"
)

// New returns the section's page.
func New(sec core.Section) fyne.CanvasObject { return coming.View(sec) }
