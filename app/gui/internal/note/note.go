// Package note is the message a page of the window shows under a form or a card: a
// wrapping label, hidden until it has something to say, coloured by its importance
// (danger for an error, success for a done action).
package note

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/widget"
)

// New returns a hidden, wrapping label.
func New() *widget.Label {
	l := widget.NewLabel("")
	l.Wrapping = fyne.TextWrapWord
	l.Hide()
	return l
}

// Set shows text in l with the importance imp.
func Set(l *widget.Label, text string, imp widget.Importance) {
	l.Importance = imp
	l.SetText(text)
	l.Show()
}
