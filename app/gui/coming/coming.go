// Package coming draws the card of what a section will still offer, straight from
// core.Sections. It shows no sample data.
package coming

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// NotePartial is the note above the list of what is still to come in a section.
const NotePartial = "Still to come in this section:"

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
