package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// maxKeyBytes caps a key read from stdin.
const maxKeyBytes = 16 << 10

// readKey reads a secret: without echo from the terminal (after prompt on stderr), else
// the first line of stdin. Surrounding spaces are dropped.
func readKey(env *Env, prompt string) (string, error) {
	if env.Stdin == nil {
		return "", nil
	}
	if f, ok := env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(env.Stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		if err != nil {
			return "", fmt.Errorf("read the key from the terminal: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	line, err := bufio.NewReader(io.LimitReader(env.Stdin, maxKeyBytes)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("read the key from stdin: %w", err)
	}
	return strings.TrimSpace(line), nil
}
