// Package coming draws the page of a section that is not built yet: its title, what it is
// for, and the list of what it will offer, straight from core.Sections. It shows no sample data.
package coming

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
)

// View returns the page for one section.
func View(sec core.Section) fyne.CanvasObject {
	title := widget.NewRichText(&widget.TextSegment{Text: sec.Title, Style: widget.RichTextStyleHeading})
	summary := widget.NewLabel(sec.Summary)
	summary.Wrapping = fyne.TextWrapWord

	items := []fyne.CanvasObject{title, summary}
	if len(sec.Coming) > 0 {
		var list []widget.RichTextSegment
		for _, c := range sec.Coming {
			list = append(list, &widget.ParagraphSegment{Texts: []widget.RichTextSegment{
				&widget.TextSegment{Text: c, Style: widget.RichTextStyleInline},
			}})
		}
		coming := widget.NewRichText(&widget.ListSegment{Items: list})
		coming.Wrapping = fyne.TextWrapWord
		note := widget.NewLabelWithStyle("This section is being built. It will offer:", fyne.TextAlignLeading, fyne.TextStyle{Italic: true})
		items = append(items, widget.NewCard("", "", container.NewVBox(
			container.NewHBox(widget.NewIcon(theme.InfoIcon()), note), coming)))
	}
	return container.NewVScroll(container.NewPadded(container.NewVBox(items...)))
}
