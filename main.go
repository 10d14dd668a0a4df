// Command gata is Gata Contributor: one program through which people contribute to open AI
// (blind model comparisons, dataset validation, shared GPU time, signed submissions) and
// are credited for it. See README.md.
package main

import (
	"os"

	"github.com/gata-contrib/gata/app"
)

func main() { os.Exit(app.Main(os.Args[1:])) }
