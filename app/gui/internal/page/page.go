// Package page is what the section pages of the window share: the frame of a page (the
// section's title as a heading, its summary, the page's own cards and the card of what the
// section is still to offer, in a scroll container) and the enabling of a control by a
// condition.
package page

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/coming"
)

// Frame returns the page of sec: its title as a heading, its summary, then cards, then
// (when sec lists what is still to come) the card of it, padded in a vertical scroll.
func Frame(sec core.Section, cards ...fyne.CanvasObject) *container.Scroll {
	title := widget.NewRichText(&widget.TextSegment{Text: sec.Title, Style: widget.RichTextStyleHeading})
	summary := widget.NewLabel(sec.Summary)
	summary.Wrapping = fyne.TextWrapWord
	items := append([]fyne.CanvasObject{title, summary}, cards...)
	if len(sec.Coming) > 0 {
		items = append(items, coming.Card(coming.NotePartial, sec.Coming))
	}
	return container.NewVScroll(container.NewPadded(container.NewVBox(items...)))
}

// SetEnabled enables d when on holds and disables it otherwise.
func SetEnabled(d fyne.Disableable, on bool) {
	if on {
		d.Enable()
	} else {
		d.Disable()
	}
}
