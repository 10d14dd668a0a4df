package gui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
)

// variantTheme is the default theme held to one variant, for the light and dark choices
// of the theme setting; "system" uses the default theme as is, which follows the OS.
type variantTheme struct {
	fyne.Theme
	variant fyne.ThemeVariant
}

func (t variantTheme) Color(n fyne.ThemeColorName, _ fyne.ThemeVariant) color.Color {
	return t.Theme.Color(n, t.variant)
}

// themeFor maps the ui.theme setting to a Fyne theme.
func themeFor(name string) fyne.Theme {
	switch name {
	case "light":
		return variantTheme{Theme: theme.DefaultTheme(), variant: theme.VariantLight}
	case "dark":
		return variantTheme{Theme: theme.DefaultTheme(), variant: theme.VariantDark}
	}
	return theme.DefaultTheme()
}
