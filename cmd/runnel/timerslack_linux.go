package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// raiseTimerSlack makes the process run with a timer slack of at least d,
// executing it again (same binary, arguments and environment, plus
// timerSlackEnv) when its threads run with less. It returns nil when the
// slack is already at least d; otherwise it returns only on failure.
func raiseTimerSlack(d time.Duration, getenv env) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cur, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("reading the timer slack: %w", err)
	}
	if time.Duration(cur) >= d {
		os.Unsetenv(timerSlackEnv)
		return nil
	}
	if getenv(timerSlackEnv) != "" {
		return fmt.Errorf("the timer slack is %v after setting it to %v", time.Duration(cur), d)
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(d.Nanoseconds()), 0, 0, 0); err != nil {
		return fmt.Errorf("setting the timer slack: %w", err)
	}
	exe, err := os.Executable()
	if err == nil {
		environ := append(os.Environ(), timerSlackEnv+"="+strconv.FormatInt(d.Nanoseconds(), 10))
		err = unix.Exec(exe, os.Args, environ)
	}
	// Still here: the slack stays on this thread only; put it back.
	unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(cur), 0, 0, 0)
	return fmt.Errorf("executing %s again with the timer slack set: %w", exe, err)
}
