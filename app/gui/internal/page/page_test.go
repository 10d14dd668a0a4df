package page

import (
	"slices"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/gata-contrib/gata/app/core"
	"github.com/gata-contrib/gata/app/gui/internal/widgettest"
)

func TestFrame(t *testing.T) {
	test.NewTempApp(t)
	card := widget.NewCard("Own card", "", widget.NewLabel("card body"))
	tests := []struct {
		name    string
		sec     core.Section
		objects int // in the page's column: heading, summary, the card, the coming card
		labels  []string
	}{
		{"nothing to come", core.Section{Title: "Chat", Summary: "Ask models."}, 3,
			[]string{"Ask models.", "card body"}},
		{"more to come", core.Section{Title: "Share", Summary: "Donate GPU time.", Coming: []string{"GPU jobs"}}, 4,
			[]string{"Donate GPU time.", "card body", "Still to come in this section:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scroll := Frame(tt.sec, card)
			if scroll.Direction != container.ScrollVerticalOnly {
				t.Errorf("Frame(%q) scrolls in direction %v, want vertical only", tt.sec.Title, scroll.Direction)
			}
			col := scroll.Content.(*fyne.Container).Objects[0].(*fyne.Container)
			if len(col.Objects) != tt.objects {
				t.Fatalf("Frame(%q) has %d objects, want %d", tt.sec.Title, len(col.Objects), tt.objects)
			}
			head, ok := col.Objects[0].(*widget.RichText)
			if !ok || head.String() != tt.sec.Title {
				t.Errorf("Frame(%q) starts with %#v, want the heading %q", tt.sec.Title, col.Objects[0], tt.sec.Title)
			}
			if col.Objects[2] != card {
				t.Errorf("Frame(%q): the third object is not the page's card", tt.sec.Title)
			}
			w := test.NewWindow(scroll)
			defer w.Close()
			got := widgettest.Labels(scroll)
			for _, want := range tt.labels {
				if !slices.Contains(got, want) {
					t.Errorf("Frame(%q) shows labels %q, want %q among them", tt.sec.Title, got, want)
				}
			}
		})
	}
}

func TestSetEnabled(t *testing.T) {
	test.NewTempApp(t)
	b := widget.NewButton("Go", nil)
	for _, on := range []bool{false, true, true, false} {
		SetEnabled(b, on)
		if b.Disabled() == on {
			t.Errorf("SetEnabled(b, %v): Disabled() = %v", on, b.Disabled())
		}
	}
}
