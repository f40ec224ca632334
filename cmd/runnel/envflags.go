package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"
)

// envDefaults gives the commands' flags their defaults from the
// environment: a variable that is set wins over the built-in default, and
// one that does not parse is collected in *err (the built-in default then
// stands), for the command to report before it does anything.
type envDefaults struct {
	getenv env
	err    *error
}

func (e envDefaults) fail(key, v string, err error) {
	*e.err = errors.Join(*e.err, fmt.Errorf("%s=%q: %w", key, v, err))
}

func (e envDefaults) str(key, def string) string {
	if v := e.getenv(key); v != "" {
		return v
	}
	return def
}

func (e envDefaults) duration(key string, def time.Duration) time.Duration {
	v := e.getenv(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		e.fail(key, v, err)
		return def
	}
	return d
}

func (e envDefaults) integer(key string, def int) int {
	v := e.getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.fail(key, v, errors.New("not a number"))
		return def
	}
	return n
}

func (e envDefaults) int64(key string, def int64) int64 {
	v := e.getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		e.fail(key, v, errors.New("not a number"))
		return def
	}
	return n
}

func (e envDefaults) boolean(key string, def bool) bool {
	v := e.getenv(key)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.fail(key, v, errors.New("not a boolean"))
		return def
	}
	return b
}

// parseFlags parses a command's flags, which take no positional arguments,
// and reports a bad environment default (envErr) after the flags, so that
// a flag's own error comes first.
func parseFlags(fs *flag.FlagSet, args []string, envErr error) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	if envErr != nil {
		return fmt.Errorf("bad environment: %w", envErr)
	}
	return nil
}
