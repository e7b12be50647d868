// Command latchkey is the account server; see internal/cli for the commands.
package main

import (
	"context"
	"os"

	"github.com/latchkey/latchkey/internal/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}
