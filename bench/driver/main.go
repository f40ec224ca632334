// Command driver is `runnel bench` on its own: the same load tool, built
// without the server, so that bench/compare.sh can measure peers even when
// the runnel binary cannot be built.
package main

import (
	"context"
	"os"

	"github.com/runnel/runnel/internal/bench"
)

func main() {
	os.Exit(bench.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
