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

// Notes above the list of what is coming.
const (
	NoteNew     = "This section is being built. It will offer:"
	NotePartial = "Still to come in this section:"
)

// View returns the page for one section.
func View(sec core.Section) fyne.CanvasObject {
	title := widget.NewRichText(&widget.TextSegment{Text: sec.Title, Style: widget.RichTextStyleHeading})
	summary := widget.NewLabel(sec.Summary)
	summary.Wrapping = fyne.TextWrapWord

	items := []fyne.CanvasObject{title, summary}
	if len(sec.Coming) > 0 {
		items = append(items, Card(NoteNew, sec.Coming))
	}
	return container.NewVScroll(container.NewPadded(container.NewVBox(items...)))
}

// Card is a card with a note and the bulleted list of what is coming.
func Card(note string, coming []string) fyne.CanvasObject {
	var list []widget.RichTextSegment
	for _, c := range coming {
		list = append(list, &widget.ParagraphSegment{Texts: []widget.RichTextSegment{
			&widget.TextSegment{Text: c, Style: widget.RichTextStyleInline},
		}})
	}
	text := widget.NewRichText(&widget.ListSegment{Items: list})
	text.Wrapping = fyne.TextWrapWord
	head := widget.NewLabelWithStyle(note, fyne.TextAlignLeading, fyne.TextStyle{Italic: true})
	return widget.NewCard("", "", container.NewVBox(
		container.NewHBox(widget.NewIcon(theme.InfoIcon()), head), text))
}
