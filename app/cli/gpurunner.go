package cli

import (
	"context"
	"errors"
)

// runGPURunner is `gata gpu-runner`: the child process in which the app runs the model on
// the GPU, spoken to over stdin and stdout. People do not run it; it is not in the help.
func runGPURunner(ctx context.Context, env *Env, args []string) error {
	var g Global
	fs := newFlags("gpu-runner", &g)
	if err := parse(fs, args, env, "gata gpu-runner (started by the app; speaks a binary protocol on stdin and stdout)"); err != nil {
		return err
	}
	if env.GPURunner == nil {
		return errors.New("gpu-runner: this build has no GPU backend")
	}
	return env.GPURunner(ctx, env.Stdin, env.Stdout)
}
