package netconn

import (
	"bufio"
	"io"
)

func bufioReader(r io.Reader, size int) io.Reader { return bufio.NewReaderSize(r, size) }
