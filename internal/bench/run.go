package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/latchkey/latchkey/internal/cli"
)

// Run runs latchkey-bench with args and returns the process exit code. Its first
// argument "serve" runs the server instead (cli.Run): the flood starts this same
// binary as its child server, so measuring peak memory needs no second binary.
func Run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "serve" {
		return cli.Run(ctx, args, getenv, stdin, stdout, stderr)
	}
	if err := bench(ctx, args, stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "latchkey-bench: "+strings.ReplaceAll(err.Error(), "\n", " "))
		return 1
	}
	return 0
}
