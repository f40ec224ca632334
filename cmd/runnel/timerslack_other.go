//go:build !linux

package main

import "time"

// raiseTimerSlack does nothing where threads have no timer slack to set.
func raiseTimerSlack(time.Duration, env) error { return nil }
