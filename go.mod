module github.com/gata-contrib/gata

go 1.26.0

require github.com/mattn/go-sqlite3 v1.14.53

require (
	fyne.io/fyne/v2 v2.8.1 // indirect
	golang.org/x/image v0.47.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
