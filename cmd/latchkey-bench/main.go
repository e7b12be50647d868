// Command latchkey-bench measures Latchkey's hot paths against same-run references;
// see internal/bench. It is a development tool, built apart from the shipped
// latchkey binary.
package main

import (
	"context"
	"os"

	"github.com/latchkey/latchkey/internal/bench"
)

func main() {
	os.Exit(bench.Run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}
