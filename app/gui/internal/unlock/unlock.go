// Package unlock is the row a page of the window shows while the app's secret store (the
// encrypted file used where no system keyring runs) is locked: what it is for, a
// passphrase entry with an Unlock button, and what came of the last try.
package unlock

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/gui/internal/note"
)

// Label is the row's button.
const Label = "Unlock"

// Row is the passphrase row.
type Row struct {
	Box   *fyne.Container // the whole row, hidden until Show
	Entry *widget.Entry   // the passphrase
	msg   *widget.Label
}

// New returns the row, hidden, with text above the entry. submit is called, on the UI
// goroutine, with the passphrase typed when the person presses Unlock or Enter.
func New(text, placeholder string, submit func(passphrase string)) *Row {
	r := &Row{Entry: widget.NewPasswordEntry(), msg: note.New()}
	r.Entry.SetPlaceHolder(placeholder)
	r.Entry.OnSubmitted = func(p string) { submit(p) }
	intro := widget.NewLabel(text)
	intro.Wrapping = fyne.TextWrapWord
	btn := widget.NewButtonWithIcon(Label, theme.LoginIcon(), func() { submit(r.Entry.Text) })
	r.Box = container.NewVBox(intro, container.NewBorder(nil, nil, nil, btn, r.Entry), r.msg)
	r.Box.Hide()
	return r
}

// Done shows the outcome of an unlock: err under the entry, or, when it worked, the row
// cleared of the passphrase and its message. It reports whether it worked.
func (r *Row) Done(err error) bool {
	if err != nil {
		note.Set(r.msg, err.Error(), widget.DangerImportance)
		return false
	}
	r.Entry.SetText("")
	r.msg.Hide()
	return true
}
